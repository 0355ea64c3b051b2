package profiling_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/recbuf/recbuf/internal/profiling"
)

func TestRegisterServesTheProfiles(t *testing.T) {
	mux := http.NewServeMux()
	profiling.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name, path, want string
	}{
		{"the index lists the named profiles", "/debug/pprof/", "goroutine"},
		{"a named profile is served under the prefix", "/debug/pprof/goroutine?debug=1", "goroutine profile:"},
		{"the heap profile is served", "/debug/pprof/heap?debug=1", "heap profile:"},
		{"the command line is served", "/debug/pprof/cmdline", "profiling.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tt.want) {
				t.Errorf("GET %s: got %d %.80q, want 200 with %q", tt.path, resp.StatusCode, body, tt.want)
			}
		})
	}
}

// TestNoServerServesTheDefaultServeMux: net/http/pprof's import puts the
// profiles on http.DefaultServeMux, so a server with a nil handler (or the
// package-level http.Handle) would serve them to anyone.
func TestNoServerServesTheDefaultServeMux(t *testing.T) {
	root := filepath.Join("..", "..")
	forbidden := regexp.MustCompile(`http\.DefaultServeMux|http\.ListenAndServe(TLS)?\(|http\.Handle(Func)?\(|Handler:\s*nil\b`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == "bin" || strings.HasPrefix(d.Name(), ".")) && path != root:
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go"):
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if code, _, _ := strings.Cut(line, "//"); forbidden.MatchString(code) {
				t.Errorf("%s:%d serves or registers on http.DefaultServeMux: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
