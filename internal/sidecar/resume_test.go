package sidecar_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/onsi/gomega"

	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/wire"
)

// sse is a plain HTTP client of one event stream that behaves as a
// browser's EventSource: the only header it sends is Last-Event-ID, and it
// remembers the id of the last event it saw.
type sse struct {
	t      *testing.T
	resp   *http.Response
	r      *wire.EventReader
	cancel context.CancelFunc
	lastID string
}

// openSSE opens url's stream, with Last-Event-ID when lastEventID is set.
// A stream that stops delivering fails the test after waitTimeout instead
// of hanging it.
func openSSE(t *testing.T, url, lastEventID string) *sse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &sse{t: t, resp: resp, r: wire.NewEventReader(resp.Body, 0), cancel: cancel}
	t.Cleanup(s.close)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s with Last-Event-ID %q: got status %d, want 200", url, lastEventID, resp.StatusCode)
	}
	return s
}

func (s *sse) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// next returns the next event as "<seq>:<payload>" for a value,
// "reset:<reason>:<after>:<lastSeq>", "lag:<missed>" or the event's type.
func (s *sse) next() string {
	s.t.Helper()
	ev, err := s.r.Next()
	if err != nil {
		s.t.Fatalf("reading the stream: %v", err)
	}
	s.lastID = ev.ID
	switch ev.Type {
	case wire.EventValue:
		var env wire.Envelope
		if err := json.Unmarshal(ev.Data, &env); err != nil {
			s.t.Fatalf("decode %q: %v", ev.Data, err)
		}
		return fmt.Sprintf("%d:%s", env.Seq, env.Payload())
	case wire.EventReset:
		var d wire.ResetData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			s.t.Fatalf("decode %q: %v", ev.Data, err)
		}
		return fmt.Sprintf("reset:%s:%d:%d", d.Reason, d.After, d.LastSeq)
	case wire.EventLag:
		var d wire.LagData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			s.t.Fatalf("decode %q: %v", ev.Data, err)
		}
		return fmt.Sprintf("lag:%d", d.Missed)
	default:
		return ev.Type
	}
}

// until reads values until the one numbered seq, as a SingleLatest or
// Mailbox stream may skip the values before it.
func (s *sse) until(seq uint64) {
	s.t.Helper()
	prefix := strconv.FormatUint(seq, 10) + ":"
	for {
		ev := s.next()
		if len(ev) >= len(prefix) && ev[:len(prefix)] == prefix {
			return
		}
	}
}

func (s *sse) expect(want ...string) {
	s.t.Helper()
	for i, w := range want {
		if got := s.next(); got != w {
			s.t.Fatalf("event %d: got %q, want %q", i, got, w)
		}
	}
}

// waitProduced waits until the sidecar's record has numbered n values.
func (r *running) waitProduced(t *testing.T, record string, n int) {
	t.Helper()
	eventually(t, func() float64 {
		return r.metric(t, `recbuf_buffer_produced_total{namespace="ns",record="`+record+`"}`)
	}).Should(gomega.Equal(float64(n)))
}

// TestResumeWithAPositionThisProcessDidNotNumber is the contract's "no
// silent loss on resume" for a client that can send no header of its own:
// whatever position it brings that this process did not number, its stream
// begins with a reset event and then delivers this process's values; it
// neither skips values silently nor waits forever.
func TestResumeWithAPositionThisProcessDidNotNumber(t *testing.T) {
	types := []struct {
		name   string
		record sidecar.RecordConfig
		// afterReset is what a stream gets once reset, when the process
		// holds values 1..5: a ring all of them, the others the newest.
		afterReset []string
	}{
		{name: "SpmcRing", record: ring("rec", 16), afterReset: []string{"1:b1", "2:b2", "3:b3", "4:b4", "5:b5"}},
		{name: "SingleLatest", record: latest("rec"), afterReset: []string{"5:b5"}},
		{name: "Mailbox", record: mailbox("rec"), afterReset: []string{"5:b5"}},
	}
	cases := []struct {
		name string
		// position runs the first part of the story and returns the
		// Last-Event-ID to resume with and the process to resume at, which
		// holds values b1..b5.
		position  func(t *testing.T, ns *natstest.Server, cfg sidecar.Config) (string, *running)
		wantReset string
	}{
		{
			name: "the id last seen before the process restarted resets",
			position: func(t *testing.T, ns *natstest.Server, cfg sidecar.Config) (string, *running) {
				first := start(t, cfg)
				id := seenID(t, first, ns)
				first.stop(t)
				cfg.HTTPAddr = first.HTTPAddr()
				second := start(t, cfg)
				publish(t, ns.Connect(), "in.rec", "b", 1, 5)
				second.waitProduced(t, "rec", 5)
				return id, second
			},
			wantReset: "reset:instance:3:5",
		},
		{
			name: "the id last seen at another instance resets",
			position: func(t *testing.T, ns *natstest.Server, cfg sidecar.Config) (string, *running) {
				other := start(t, cfg)
				id := seenID(t, other, ns)
				// A replica started later numbers the same messages from 1.
				this := start(t, cfg)
				publish(t, ns.Connect(), "in.rec", "b", 1, 5)
				this.waitProduced(t, "rec", 5)
				return id, this
			},
			wantReset: "reset:instance:3:5",
		},
		{
			name: "a bare number beyond the newest value resets",
			position: func(t *testing.T, ns *natstest.Server, cfg sidecar.Config) (string, *running) {
				this := start(t, cfg)
				publish(t, ns.Connect(), "in.rec", "b", 1, 5)
				this.waitProduced(t, "rec", 5)
				return "18446744073709551615", this
			},
			wantReset: "reset:ahead:18446744073709551615:5",
		},
		{
			name: "this instance's id beyond its newest value resets",
			position: func(t *testing.T, ns *natstest.Server, cfg sidecar.Config) (string, *running) {
				this := start(t, cfg)
				publish(t, ns.Connect(), "in.rec", "b", 1, 5)
				this.waitProduced(t, "rec", 5)
				return this.Instance() + "-99", this
			},
			wantReset: "reset:ahead:99:5",
		},
	}
	for _, typ := range types {
		for _, tc := range cases {
			t.Run(typ.name+": "+tc.name, func(t *testing.T) {
				ns := natsServer(t)
				id, this := tc.position(t, ns, testConfig(ns.URL(), typ.record))
				s := openSSE(t, this.RecordURL("rec")+"/events", id)
				s.expect(tc.wantReset)
				s.expect(typ.afterReset...)
				// And the stream goes on with what comes next.
				publish(t, ns.Connect(), "in.rec", "b", 6, 6)
				s.expect("6:b6")
			})
		}
	}
}

// seenID publishes a1..a3 to a stream of sc's record "rec" and returns the
// id of the last event its client saw.
func seenID(t *testing.T, sc *running, ns *natstest.Server) string {
	t.Helper()
	s := openSSE(t, sc.RecordURL("rec")+"/events", "")
	publish(t, ns.Connect(), "in.rec", "a", 1, 3)
	s.until(3)
	s.close()
	return s.lastID
}
