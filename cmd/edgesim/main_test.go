package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/recbuf/recbuf/internal/testutil/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunPrintsWhatItPublished(t *testing.T) {
	srv := natstest.Start(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--nats-url", srv.URL(), "--count", "5", "--rate", "0", "--state-subject", ""}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d, stderr %s", code, stderr.String())
	}
	if got, want := strings.TrimSpace(stdout.String()), `{"command":5,"telemetry":5}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestRunRefusesUnknownFlags(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--nope"}, &out, &out); code != 2 {
		t.Errorf("got exit code %d, want 2", code)
	}
}
