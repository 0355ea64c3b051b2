/*
Copyright 2026 The recbuf Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package kubetest finds what envtest needs to run a real kube-apiserver
// and etcd for the project's tests: the binaries hack/envtest-assets.sh
// builds and the generated CRDs, from any package's directory.
package kubetest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KubernetesVersion is the version of the kube-apiserver and etcd that
// hack/envtest-assets.sh builds into bin/k8s.
const KubernetesVersion = "v1.34.4"

// Root is the module's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// CRDDirectory holds the generated CRDs (make manifests).
func CRDDirectory() string { return filepath.Join(Root(), "config", "crd", "bases") }

// Assets is the folder of kube-apiserver and etcd: KUBEBUILDER_ASSETS, or
// the one hack/envtest-assets.sh builds. It fails, saying how to get them,
// when they are missing.
func Assets() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(Root(), "bin", "k8s", KubernetesVersion)
	}
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		return "", fmt.Errorf("no envtest binaries: run `make test`, or set KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh): %w", err)
	}
	return dir, nil
}

// Environment is an envtest environment with the project's CRDs, to be
// adjusted (webhooks, API server flags) and started by the caller.
func Environment() (*envtest.Environment, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{CRDDirectory()},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}, nil
}
