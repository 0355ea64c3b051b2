package v1alpha1

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// TestTheAPIImportsOnlyKubernetesTypes keeps the arrows pointing at the
// API: the manager, the buffer process's tests and clients import this
// package, so it imports nothing else of the module (which would link, say,
// the wire format into every client of the API), only the standard library
// and the Kubernetes API types. Limits the API shares with the buffer
// process are defined here and checked for agreement where both meet
// (controllers). Its tests are held to the same rule, plus the YAML parser
// that reads the generated CRD.
func TestTheAPIImportsOnlyKubernetesTypes(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatalf("reading the package: %v", err)
	}
	tests := []struct {
		name    string
		imports []string
		extra   []string
	}{
		{"the package imports only the standard library and Kubernetes API types", pkg.Imports, nil},
		{"its tests import only those and the YAML parser", append(pkg.TestImports, pkg.XTestImports...), []string{"sigs.k8s.io/yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range tt.imports {
				if !apiMayImport(path, tt.extra) {
					t.Errorf("got an import of %s, want only the standard library, k8s.io/apimachinery and k8s.io/api: define what the API needs in this package", path)
				}
			}
		})
	}
}

func apiMayImport(path string, extra []string) bool {
	first, _, _ := strings.Cut(path, "/")
	switch {
	case !strings.Contains(first, "."): // the standard library
		return true
	case strings.HasPrefix(path, "k8s.io/apimachinery/"), strings.HasPrefix(path, "k8s.io/api/"):
		return true
	}
	return slices.Contains(extra, path)
}
