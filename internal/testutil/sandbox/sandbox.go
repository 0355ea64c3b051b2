// Package sandbox gives tests local resources that several packages need:
// a loopback port nobody listens on, and a directory of given files.
package sandbox

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// FreePort returns a loopback TCP port that was free a moment ago: for an
// address a test hands to a server it starts, or for a URL that must find
// nobody listening.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// WriteFiles writes name/content pairs into a new temporary directory
// (removed after the test) and returns it.
func WriteFiles(tb testing.TB, files map[string][]byte) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}
