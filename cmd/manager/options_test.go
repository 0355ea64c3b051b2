package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestTheManagerReportsEveryMistakeAtOnce: options.validate joins every
// problem, each naming its flag, so that a command line is fixed in one go
// (as the buffer process's sidecar.Config.Validate does).
func TestTheManagerReportsEveryMistakeAtOnce(t *testing.T) {
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
