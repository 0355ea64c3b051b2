package sidecar

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/recbuf/recbuf/internal/report"
)

// TestReportKeysAreTheirRawBytes: a derived key is 32 raw bytes, any of
// which may be whitespace; it is taken as it is, never trimmed, and only a
// file shorter than report.MinKeySize is refused.
func TestReportKeysAreTheirRawBytes(t *testing.T) {
	dir := t.TempDir()
	spaced := []byte(" \n\t0123456789abcdef0123456789a\r\n ")
	tests := []struct {
		name    string
		content []byte
		wantErr bool
	}{
		{"whitespace at both ends is part of the key", spaced, false},
		{"a key of whitespace only, long enough, is a key", []byte("                                "), false},
		{"a derived key", report.DeriveKey([]byte("0123456789abcdef0123456789abcdef"), "ns", "r", "u"), false},
		{"a short key is refused", []byte("0123456789abcdef0123456789abcde"), true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, string(rune('a'+i)))
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readReportKey(path)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got key %q, want an error", got)
				}
				return
			}
			if err != nil || string(got) != string(tt.content) {
				t.Errorf("got %q, %v; want the file's bytes as they are", got, err)
			}
		})
	}
}
