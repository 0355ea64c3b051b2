package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTheManagerDoesNotLinkTheBufferProcess keeps the buffer process out
// of the manager binary: the ring and the consumer server are the buffer
// process's, and a constant the manager needs from them (sizing reads the
// default stream cap) belongs in a leaf package both import (internal/wire),
// not in them. go list -deps is the linker's view, so an indirect import
// through another package fails too.
func TestTheManagerDoesNotLinkTheBufferProcess(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"github.com/recbuf/recbuf/internal/buffer",
		"github.com/recbuf/recbuf/internal/sidecar",
	}
	for dep := range strings.FieldsSeq(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("got cmd/manager linking %s, want none of %s or below: move what the manager needs into a package below both", dep, f)
			}
		}
	}
}
