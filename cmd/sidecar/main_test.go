package main_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestBinaryServesAndStopsOnSIGTERM builds the command, runs it standalone
// and stops it as Kubernetes does.
func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "sidecar")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--embedded-nats", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--shutdown-grace", "5s", "--record", "state=SingleLatest@devices.state")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// The JSON log line "Buffer process started" says where it listens.
	var started struct {
		Msg     string `json:"msg"`
		HTTP    string `json:"http"`
		Metrics string `json:"metrics"`
	}
	lines := bufio.NewScanner(stderr)
	for started.Msg != "Buffer process started" {
		if !lines.Scan() {
			t.Fatalf("no start line: %v", lines.Err())
		}
		_ = json.Unmarshal(lines.Bytes(), &started)
	}
	for _, url := range []string{"http://" + started.Metrics + "/readyz", "http://" + started.HTTP + "/v1/records/state"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: got %d, want 200", url, resp.StatusCode)
		}
	}

	begun := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() {
		for lines.Scan() {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
	if took := time.Since(begun); took > 5*time.Second {
		t.Errorf("took %s to stop, more than the grace period", took)
	}
}
