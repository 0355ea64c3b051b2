package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTheManagerReportsEveryMistakeAtOnce: options.validate joins every
// problem, each naming its flag, so that a command line is fixed in one go
// (as the buffer process's sidecar.Config.Validate does).
func TestTheManagerReportsEveryMistakeAtOnce(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "a command line with three mistakes reports all three",
			args: []string{"--buffer-image-pull-policy=Sometimes", "--report-interval=0s", "--metrics-secure=false", "--metrics-cert-path=/certs"},
			want: []string{`--buffer-image-pull-policy "Sometimes"`, "--report-interval 0s", "--metrics-cert-path needs --metrics-secure"},
		},
		{
			name: "a missing client CA file is named, among the other mistakes",
			args: []string{"--sidecar-injection", "--webhook-certs=external", "--webhook-client-ca-file=/nonexistent/ca.crt", "--report-interval=0s"},
			want: []string{"--webhook-client-ca-file: open /nonexistent/ca.crt", "--report-interval 0s"},
		},
		{
			name: "a client CA file that is not PEM is named",
			args: []string{"--sidecar-injection", "--webhook-certs=external", "--webhook-client-ca-file=" + notPEM},
			want: []string{"--webhook-client-ca-file " + notPEM + ": no PEM certificate"},
		},
		{
			name: "client names without a client CA are refused",
			args: []string{"--sidecar-injection", "--webhook-certs=external", "--webhook-client-names=kube-apiserver"},
			want: []string{"--webhook-client-names needs --webhook-client-ca-file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			_, err := parseFlags(fs, tt.args)
			if err == nil {
				t.Fatalf("got no error, want %d", len(tt.want))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to report %q", err, w)
				}
			}
			if got := strings.Count(err.Error(), "\n") + 1; got != len(tt.want) {
				t.Errorf("got %d problems in %q, want %d", got, err, len(tt.want))
			}
		})
	}
}
