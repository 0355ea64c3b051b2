package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/wire"
)

const deprecation = "--from-oldest is deprecated: use --from=oldest"

// TestStreamAsksWhereItStarts runs stream against a server that records
// the query of the request and refuses it (a 409 ends a stream for good),
// so each case is one request.
func TestStreamAsksWhereItStarts(t *testing.T) {
	queries := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries <- r.URL.RawQuery
		http.Error(w, "refused", http.StatusConflict)
	}))
	defer srv.Close()
	url := srv.URL + "/v1/records/r"

	tests := []struct {
		name     string
		args     []string
		want     string
		wantWarn bool
	}{
		{name: "no --from starts at the next value", args: []string{"stream", url}, want: ""},
		{name: "--from=next starts at the next value", args: []string{"stream", url, "--from=next"}, want: ""},
		{name: "--from=oldest asks from the oldest", args: []string{"stream", url, "--from=oldest"}, want: "from=oldest"},
		{name: "--from last=N asks for the newest N", args: []string{"stream", url, "--from", "last=3"}, want: "last=3"},
		{name: "--from-oldest still asks from the oldest, with a warning", args: []string{"stream", url, "--from-oldest"}, want: "from=oldest", wantWarn: true},
		{name: "--from-oldest agrees with --from=oldest", args: []string{"stream", url, "--from-oldest", "--from=oldest"}, want: "from=oldest", wantWarn: true},
		{name: "--from-oldest=false asks for nothing more than --from", args: []string{"stream", url, "--from-oldest=false", "--from=last=2"}, want: "last=2", wantWarn: true},
		{name: "tail is stream", args: []string{"tail", url, "--from=last=4"}, want: "last=4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != 1 {
				t.Errorf("exit status: got %d, want 1 for the refused stream (stderr %q)", code, stderr.String())
			}
			select {
			case got := <-queries:
				if got != tt.want {
					t.Errorf("query: got %q, want %q", got, tt.want)
				}
			default:
				t.Fatalf("no request (stderr %q)", stderr.String())
			}
			if got := strings.Contains(stderr.String(), deprecation); got != tt.wantWarn {
				t.Errorf("deprecation warning: got %v, want %v (stderr %q)", got, tt.wantWarn, stderr.String())
			}
			if !strings.Contains(stdout.String(), `"event":"summary"`) {
				t.Errorf("stdout: got %q, want a summary", stdout.String())
			}
		})
	}
}

func TestStreamRefusesABadStart(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"last=x is refused with the value and why", []string{"stream", "http://x/v1/records/r", "--from", "last=x"},
			`recbufctl stream: usage: --from "last=x": N must be a positive integer`},
		{"last=0 is refused with the value and why", []string{"tail", "http://x/v1/records/r", "--from=last=0"},
			`recbufctl tail: usage: --from "last=0": N must be a positive integer`},
		{"an unknown start is refused with the grammar", []string{"stream", "http://x/v1/records/r", "--from=middle"},
			`--from "middle": want next, oldest or last=N`},
		{"--from-oldest contradicting --from is refused", []string{"stream", "http://x/v1/records/r", "--from-oldest", "--from=last=5"},
			"--from-oldest contradicts --from last=5: give --from only"},
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
			if stdout.Len() != 0 {
				t.Errorf("stdout: got %q, want nothing: no stream was opened", stdout.String())
			}
		})
	}
}

// TestStreamFromLastBackfills streams the newest 2 of 5 values of a real
// consumer API: a backfill line, the two values, an ordered summary.
func TestStreamFromLastBackfills(t *testing.T) {
	buf, err := buffer.New[wire.Message](buffer.TypeSpmcRing, 16)
	if err != nil {
		t.Fatal(err)
	}
	api, err := consumerapi.New(consumerapi.Config{Retry: time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
		consumerapi.Record{Name: "r", Buffer: buf})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	defer buf.Close()
	for i := range 5 {
		if err := buf.Push(wire.Message{Data: []byte(`{"n":` + strconv.Itoa(i+1) + `}`)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"stream", srv.URL + "/v1/records/r", "--from=last=2", "--count=2"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status: got %d, want 0 (stderr %q)", code, stderr.String())
	}
	var events []map[string]any
	dec := json.NewDecoder(&stdout)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		events = append(events, m)
	}
	if len(events) != 4 {
		t.Fatalf("got %d lines %v, want backfill, 2 values and the summary", len(events), events)
	}
	if e := events[0]; e["event"] != "backfill" || e["count"] != 2.0 || e["lastSeq"] != 5.0 {
		t.Errorf("first line: got %v, want a backfill of 2 through 5", e)
	}
	for i, want := range []float64{4, 5} {
		if e := events[1+i]; e["event"] != "value" || e["seq"] != want {
			t.Errorf("line %d: got %v, want value %v", 2+i, e, want)
		}
	}
	if e := events[3]; e["event"] != "summary" || e["ordered"] != true || e["values"] != 2.0 {
		t.Errorf("last line: got %v, want an ordered summary of 2 values", e)
	}
}
