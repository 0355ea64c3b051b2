package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRunRefusesBadCommandLines(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no command prints the usage", nil, "usage:"},
		{"an unknown command prints the usage", []string{"watch", "http://x/v1/records/r"}, "usage:"},
		{"a command without a URL is refused", []string{"latest"}, "want exactly one record URL"},
		{"two URLs are refused", []string{"take", "http://a/v1/records/r", "http://b/v1/records/r"}, "want exactly one record URL"},
		{"a URL that is not http is refused", []string{"stream", "nats://x:4222"}, "scheme must be http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit status: got %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr.String(), tt.wantErr)
			}
		})
	}
}

func TestGetTellsWhetherAURLAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("recbuf_nats_connected 1\n"))
	}))
	defer srv.Close()
	// A listener that never accepts: a connection to it is not answered,
	// as one a NetworkPolicy drops.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }()

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"a 200 answer prints its status and size", []string{"get", srv.URL + "/metrics"}, 0, `{"event":"get","status":200,"bytes":24}`, ""},
		{"another status is a failure", []string{"get", srv.URL + "/nothing"}, 1, `{"event":"get","status":404,`, "404 Not Found"},
		{"no answer within the timeout is a failure", []string{"get", "http://" + silent.Addr().String() + "/metrics", "--timeout=200ms"}, 1, "", "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != tt.wantCode {
				t.Errorf("exit status: got %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout: got %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestAudiencePrintsTheRecordsOwn(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"audience", "http://telemetry-recbuf.sensors.svc:8080/v1/records/telemetry"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d: %s", code, stderr.String())
	}
	if got, want := stdout.String(), `{"audience":"recbuf.dev/sensors/telemetry","event":"audience"}`+"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"audience", "http://127.0.0.1:8080/v1/records/telemetry"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "namespace is unknown") {
		t.Errorf("a URL without the namespace: exit status %d, stderr %q; want 2 and why", code, stderr.String())
	}
}
