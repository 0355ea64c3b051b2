package consumerapi_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/wire"
)

// backfillNext reads the first event of a stream opened with ?last=N as
// "backfill:<count>:<lastSeq>".
func (s *stream) backfillNext() string {
	s.t.Helper()
	ev, err := s.r.Next()
	if err != nil {
		s.t.Fatalf("reading the stream: %v", err)
	}
	if ev.Type != wire.EventBackfill {
		s.t.Fatalf("got a %s event first, want %s", ev.Type, wire.EventBackfill)
	}
	var d wire.BackfillData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		s.t.Fatalf("decode %q: %v", ev.Data, err)
	}
	if ev.ID != "" {
		s.t.Errorf("got a backfill event with id %q, want none: it is no position", ev.ID)
	}
	return "backfill:" + strings.Join([]string{u(d.Count), u(d.LastSeq)}, ":")
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func TestRingStreamBackfillsTheNewestValues(t *testing.T) {
	cases := []struct {
		name   string
		pushed uint64 // into the ring of 4
		path   string
		hdr    []string
		want   []string // after the backfill event, before the live value pushed next
		// wantBackfill is the first event; "" when the stream has none.
		wantBackfill string
	}{
		{name: "last 2 gives the newest two held, then the live values",
			pushed: 10, path: "/v1/records/ring/events?last=2", wantBackfill: "backfill:2:10", want: []string{"9:v9", "10:v10"}},
		{name: "last as many as held gives all held",
			pushed: 10, path: "/v1/records/ring/events?last=4", wantBackfill: "backfill:4:10", want: []string{"7:v7", "8:v8", "9:v9", "10:v10"}},
		{name: "last beyond what is held gives all held and says how many, without a lag",
			pushed: 10, path: "/v1/records/ring/events?last=50", wantBackfill: "backfill:4:10", want: []string{"7:v7", "8:v8", "9:v9", "10:v10"}},
		{name: "last of a ring that never filled gives all it took",
			pushed: 3, path: "/v1/records/ring/events?last=50", wantBackfill: "backfill:3:3", want: []string{"1:v1", "2:v2", "3:v3"}},
		{name: "last of an empty ring says there is nothing, then the live values",
			pushed: 0, path: "/v1/records/ring/events?last=5", wantBackfill: "backfill:0:0"},
		{name: "a Last-Event-ID header resumes instead of backfilling",
			pushed: 10, path: "/v1/records/ring/events?last=4", hdr: []string{"Last-Event-ID", "9"}, want: []string{"10:v10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consumerapi.Config{})
			push(t, f.ring, tc.pushed)
			s := f.open(t, tc.path, tc.hdr...)
			if tc.wantBackfill != "" {
				if got := s.backfillNext(); got != tc.wantBackfill {
					t.Fatalf("first event: got %q, want %q", got, tc.wantBackfill)
				}
			}
			s.expect(tc.want...)
			push(t, f.ring, tc.pushed+1)
			s.expect(u(tc.pushed+1) + ":v" + u(tc.pushed+1))
		})
	}
}

func TestBackfillRequestsThatAreRefused(t *testing.T) {
	cases := []struct {
		name, path string
		wantStatus int
		wantBody   string
	}{
		{name: "last zero is a bad request", path: "/v1/records/ring/events?last=0", wantStatus: 400,
			wantBody: `{"error":"last \"0\" is not a number of values of at least 1"}`},
		{name: "a last that is not a number is a bad request", path: "/v1/records/ring/events?last=all", wantStatus: 400,
			wantBody: `{"error":"last \"all\" is not a number of values of at least 1"}`},
		{name: "last with after is a bad request", path: "/v1/records/ring/events?last=3&after=2", wantStatus: 400,
			wantBody: `last and after are two starts`},
		{name: "last on a SingleLatest is a conflict that names its type", path: "/v1/records/latest/events?last=3", wantStatus: 409,
			wantBody: `last is for SpmcRing records; latest is a SingleLatest`},
		{name: "last on a Mailbox is a conflict that names its type", path: "/v1/records/mailbox/events?last=3", wantStatus: 409,
			wantBody: `mailbox is a Mailbox`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consumerapi.Config{})
			status, body, _ := f.call(t, "GET", tc.path)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
				t.Fatalf("got %d %s, want %d with %s", status, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}
