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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
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

// Start starts env. stop stops it, and says on stderr when it cannot: it
// runs where a test binary ends (a TestMain's defer), with no test to fail.
func Start(env *envtest.Environment) (cfg *rest.Config, stop func(), err error) {
	cfg, err = env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("starting envtest: %w", err)
	}
	return cfg, func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}, nil
}

// Scheme knows the built-in kinds and the project's.
func Scheme() (*k8sruntime.Scheme, error) {
	scheme := k8sruntime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), recbufv1alpha1.AddToScheme(scheme)); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	return scheme, nil
}

// Client is a client of cfg with Scheme.
func Client(cfg *rest.Config) (client.Client, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	return k8s, nil
}
