package consumerapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a consumer API over three records: ring (capacity 4), latest
// and mailbox.
type fixture struct {
	api     *consumerapi.Server
	srv     *httptest.Server
	ring    buffer.Buffer[wire.Message]
	latest  buffer.Buffer[wire.Message]
	mailbox buffer.Buffer[wire.Message]
}

func newFixture(t *testing.T, cfg consumerapi.Config) *fixture {
	t.Helper()
	f := &fixture{}
	var err error
	if f.ring, err = buffer.New[wire.Message](buffer.TypeSpmcRing, 4); err != nil {
		t.Fatal(err)
	}
	f.latest, _ = buffer.New[wire.Message](buffer.TypeSingleLatest, 0)
	f.mailbox, _ = buffer.New[wire.Message](buffer.TypeMailbox, 0)
	cfg.Logger = slog.New(slog.DiscardHandler)
	f.api, err = consumerapi.New(cfg,
		consumerapi.Record{Name: "ring", Subject: "r", Buffer: f.ring},
		consumerapi.Record{Name: "latest", Subject: "l", Buffer: f.latest},
		consumerapi.Record{Name: "mailbox", Subject: "m", Buffer: f.mailbox},
	)
	if err != nil {
		t.Fatal(err)
	}
	// As the buffer process serves it (see consumerapi.ConnContext).
	f.srv = httptest.NewUnstartedServer(f.api)
	f.srv.Config.ConnContext = consumerapi.ConnContext
	f.srv.Start()
	t.Cleanup(func() {
		// Closing the buffers ends open streams, which httptest waits for.
		f.ring.Close()
		f.latest.Close()
		f.mailbox.Close()
		f.srv.Close()
	})
	return f
}

// push pushes values "v<seq>" until the buffer's newest sequence is upTo.
func push(t *testing.T, b buffer.Buffer[wire.Message], upTo uint64) {
	t.Helper()
	for seq := b.Stats().LastSeq + 1; seq <= upTo; seq++ {
		if err := b.Push(wire.Message{Data: []byte("v" + strconv.FormatUint(seq, 10)), Subject: "s"}); err != nil {
			t.Fatal(err)
		}
	}
}

type stream struct {
	t        *testing.T
	resp     *http.Response
	r        *wire.EventReader
	instance string
}

func (f *fixture) open(t *testing.T, path string, hdr ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: got status %d (%s), want 200", path, resp.StatusCode, b)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Fatalf("got content type %q, want text/event-stream", got)
	}
	return &stream{t: t, resp: resp, r: wire.NewEventReader(resp.Body, 0), instance: f.api.Instance()}
}

// next returns the next event as "<seq>:<payload>" for values, "lag:<n>",
// "reset:<reason>:<after>:<lastSeq>" or "end".
func (s *stream) next() string {
	s.t.Helper()
	ev, err := s.r.Next()
	if err != nil {
		s.t.Fatalf("reading the stream: %v", err)
	}
	switch ev.Type {
	case wire.EventValue:
		var env wire.Envelope
		if err := json.Unmarshal(ev.Data, &env); err != nil {
			s.t.Fatalf("decode %q: %v", ev.Data, err)
		}
		if want := wire.FormatEventID(s.instance, env.Seq); ev.ID != want {
			s.t.Errorf("got event id %q for seq %d, want %q", ev.ID, env.Seq, want)
		}
		return fmt.Sprintf("%d:%s", env.Seq, env.Payload())
	case wire.EventLag:
		var d wire.LagData
		_ = json.Unmarshal(ev.Data, &d)
		return fmt.Sprintf("lag:%d", d.Missed)
	case wire.EventReset:
		var d wire.ResetData
		_ = json.Unmarshal(ev.Data, &d)
		return fmt.Sprintf("reset:%s:%d:%d", d.Reason, d.After, d.LastSeq)
	default:
		return ev.Type
	}
}

func (s *stream) expect(want ...string) {
	s.t.Helper()
	for i, w := range want {
		if got := s.next(); got != w {
			s.t.Fatalf("event %d: got %q, want %q", i, got, w)
		}
	}
}

func TestRingStreamStartsWhereAsked(t *testing.T) {
	cases := []struct {
		name string
		path string
		// instance: "" none, "self" the server's own, else that value.
		instance, lastEventID string
		want                  []string
	}{
		{name: "a new stream starts after the newest value",
			path: "/v1/records/ring/events", want: []string{"11:v11", "12:v12"}},
		{name: "from=oldest starts at the oldest retained value",
			path: "/v1/records/ring/events?from=oldest", want: []string{"7:v7", "8:v8", "9:v9", "10:v10"}},
		{name: "after a retained sequence resumes without loss",
			path: "/v1/records/ring/events?after=8", want: []string{"9:v9", "10:v10"}},
		{name: "after an evicted sequence reports the exact gap before the oldest value",
			path: "/v1/records/ring/events?after=2", want: []string{"lag:4", "7:v7", "8:v8", "9:v9", "10:v10"}},
		{name: "Last-Event-ID wins over the after parameter",
			path: "/v1/records/ring/events?after=2", lastEventID: "9", want: []string{"10:v10"}},
		{name: "a position from this instance resumes",
			path: "/v1/records/ring/events", lastEventID: "9", instance: "self", want: []string{"10:v10"}},
		{name: "a position beyond the newest value resets to the oldest",
			path: "/v1/records/ring/events?after=99", want: []string{"reset:ahead:99:10", "7:v7", "8:v8"}},
		{name: "a position from another instance resets to the oldest",
			path: "/v1/records/ring/events", lastEventID: "9", instance: "another", want: []string{"reset:instance:9:10", "7:v7"}},
		{name: "an event id of this instance resumes",
			path: "/v1/records/ring/events", lastEventID: "self-8", want: []string{"9:v9", "10:v10"}},
		{name: "an event id of this instance in the after parameter resumes",
			path: "/v1/records/ring/events?after=self-8", want: []string{"9:v9", "10:v10"}},
		{name: "an event id of this instance after an evicted value reports the exact gap",
			path: "/v1/records/ring/events", lastEventID: "self-3", want: []string{"lag:3", "7:v7"}},
		{name: "an event id of another instance resets to the oldest",
			path: "/v1/records/ring/events", lastEventID: "another-9", want: []string{"reset:instance:9:10", "7:v7"}},
		{name: "an event id names its instance better than the header",
			path: "/v1/records/ring/events", lastEventID: "another-9", instance: "self", want: []string{"reset:instance:9:10", "7:v7"}},
		{name: "an event id of this instance beyond its newest value resets",
			path: "/v1/records/ring/events", lastEventID: "self-11", want: []string{"reset:ahead:11:10", "7:v7"}},
		{name: "a bare number within this instance's numbering is taken as its own",
			path: "/v1/records/ring/events", lastEventID: "9", want: []string{"10:v10"}},
		{name: "a bare number of this instance's newest value waits for the next one",
			path: "/v1/records/ring/events", lastEventID: "10", want: []string{"11:v11"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consumerapi.Config{})
			push(t, f.ring, 10)
			var hdr []string
			if tc.lastEventID != "" {
				hdr = append(hdr, "Last-Event-ID", strings.Replace(tc.lastEventID, "self-", f.api.Instance()+"-", 1))
			}
			path := strings.Replace(tc.path, "self-", f.api.Instance()+"-", 1)
			switch tc.instance {
			case "":
			case "self":
				hdr = append(hdr, wire.HeaderInstance, f.api.Instance())
			default:
				hdr = append(hdr, wire.HeaderInstance, tc.instance)
			}
			s := f.open(t, path, hdr...)
			// The stream is subscribed once its headers arrived. Values
			// pushed now would evict the old ones some cases read, so only
			// the streams that wait for the next value get them.
			if want := tc.want[0]; want == "11:v11" {
				push(t, f.ring, 12)
			}
			s.expect(tc.want...)
		})
	}
}

func TestSingleLatestStreamGivesTheCurrentValueThenNewerOnes(t *testing.T) {
	f := newFixture(t, consumerapi.Config{})
	push(t, f.latest, 3)
	s := f.open(t, "/v1/records/latest/events")
	s.expect("3:v3")
	push(t, f.latest, 4)
	s.expect("4:v4")
}

func TestSingleLatestStreamResumingSkipsTheValueAlreadySeen(t *testing.T) {
	cases := []struct {
		name string
		hdr  []string
	}{
		{name: "with the bare number and the instance header", hdr: []string{"Last-Event-ID", "3", wire.HeaderInstance, "self"}},
		{name: "with this instance's event id", hdr: []string{"Last-Event-ID", "self-3"}},
		{name: "with a bare number within this instance's numbering", hdr: []string{"Last-Event-ID", "3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consumerapi.Config{})
			push(t, f.latest, 3)
			s := f.open(t, "/v1/records/latest/events", selfHeaders(f, tc.hdr)...)
			push(t, f.latest, 4)
			s.expect("4:v4")
		})
	}
}

// selfHeaders replaces "self" in header values with the server's instance.
func selfHeaders(f *fixture, hdr []string) []string {
	out := make([]string, len(hdr))
	for i, h := range hdr {
		out[i] = strings.Replace(h, "self", f.api.Instance(), 1)
	}
	return out
}

// TestEveryTypeResetsAPositionItDidNotNumber: whatever the buffer type, a
// position from another instance or beyond the newest value begins the
// stream with a reset event, and the stream then delivers values; it never
// waits for a number this process has not reached.
func TestEveryTypeResetsAPositionItDidNotNumber(t *testing.T) {
	cases := []struct {
		name   string
		record string
		hdr    []string
		want   []string
	}{
		{name: "a SingleLatest stream with another instance's id resets, then gets the current value",
			record: "latest", hdr: []string{"Last-Event-ID", "another-2"}, want: []string{"reset:instance:2:3", "3:v3", "4:v4"}},
		{name: "a SingleLatest stream with another instance's header resets, then gets the current value",
			record: "latest", hdr: []string{"Last-Event-ID", "2", wire.HeaderInstance, "another"}, want: []string{"reset:instance:2:3", "3:v3", "4:v4"}},
		{name: "a SingleLatest stream after the largest sequence number resets, then gets the current value",
			record: "latest", hdr: []string{"Last-Event-ID", "18446744073709551615"}, want: []string{"reset:ahead:18446744073709551615:3", "3:v3", "4:v4"}},
		{name: "a SingleLatest stream with this instance's id beyond its newest value resets",
			record: "latest", hdr: []string{"Last-Event-ID", "self-9"}, want: []string{"reset:ahead:9:3", "3:v3", "4:v4"}},
		{name: "a Mailbox stream with another instance's id resets, then takes the pending value",
			record: "mailbox", hdr: []string{"Last-Event-ID", "another-2"}, want: []string{"reset:instance:2:3", "3:v3", "4:v4"}},
		{name: "a Mailbox stream beyond the newest value resets, then takes the pending value",
			record: "mailbox", hdr: []string{"Last-Event-ID", "99"}, want: []string{"reset:ahead:99:3", "3:v3", "4:v4"}},
		{name: "a Mailbox stream with this instance's id takes the pending value without a reset",
			record: "mailbox", hdr: []string{"Last-Event-ID", "self-2"}, want: []string{"3:v3", "4:v4"}},
		{name: "a ring stream after the largest sequence number resets to the oldest",
			record: "ring", hdr: []string{"Last-Event-ID", "18446744073709551615"}, want: []string{"reset:ahead:18446744073709551615:3", "1:v1", "2:v2", "3:v3", "4:v4"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consumerapi.Config{})
			b := map[string]buffer.Buffer[wire.Message]{"ring": f.ring, "latest": f.latest, "mailbox": f.mailbox}[tc.record]
			push(t, b, 3)
			s := f.open(t, "/v1/records/"+tc.record+"/events", selfHeaders(f, tc.hdr)...)
			n := len(tc.want) - 1
			s.expect(tc.want[:n]...)
			push(t, b, 4)
			s.expect(tc.want[n])
		})
	}
}

func TestMailboxStreamTakesValues(t *testing.T) {
	f := newFixture(t, consumerapi.Config{})
	push(t, f.mailbox, 1)
	s := f.open(t, "/v1/records/mailbox/events")
	s.expect("1:v1")
	if got := f.mailbox.Stats().Occupancy; got != 0 {
		t.Errorf("got occupancy %d after the stream took the value, want 0", got)
	}
	push(t, f.mailbox, 2)
	s.expect("2:v2")
}

func TestClosingTheBufferEndsStreamsAfterWhatTheyMayStillRead(t *testing.T) {
	f := newFixture(t, consumerapi.Config{})
	push(t, f.ring, 3)
	ring := f.open(t, "/v1/records/ring/events?from=oldest")
	push(t, f.mailbox, 1)
	mailbox := f.open(t, "/v1/records/mailbox/events")
	f.ring.Close()
	f.mailbox.Close()
	ring.expect("1:v1", "2:v2", "3:v3", "end")
	mailbox.expect("1:v1", "end")
	for _, s := range []*stream{ring, mailbox} {
		if _, err := s.r.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("after the end event: got %v, want io.EOF", err)
		}
	}
}

func TestIdleStreamsGetHeartbeats(t *testing.T) {
	f := newFixture(t, consumerapi.Config{Heartbeat: 20 * time.Millisecond})
	s := f.open(t, "/v1/records/ring/events")
	br := bufio.NewReader(s.resp.Body)
	for beats := 0; beats < 2; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if line == wire.Heartbeat[:len(wire.Heartbeat)-1] {
			beats++
		}
	}
}

func TestStreamCountsConsumers(t *testing.T) {
	f := newFixture(t, consumerapi.Config{})
	s := f.open(t, "/v1/records/ring/events")
	if got := f.api.Stats("ring"); got.Streams != 1 || got.StreamsTotal != 1 {
		t.Errorf("got %+v with one stream open, want 1 stream, 1 in total", got)
	}
	if got := f.ring.Stats().Subscribers; got != 1 {
		t.Errorf("got %d buffer subscribers, want 1", got)
	}
	_ = s.resp.Body.Close()
	g := gomega.NewWithT(t)
	g.Eventually(func() int64 { return f.api.Stats("ring").Streams }).WithTimeout(10 * time.Second).Should(gomega.BeZero())
	g.Eventually(func() int { return f.ring.Stats().Subscribers }).WithTimeout(10 * time.Second).Should(gomega.BeZero())
}

// call makes a request and returns the status, body and headers.
func (f *fixture) call(t *testing.T, method, path string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// TestTakeIsOnlyByPOST checks that no other method takes a value: a GET
// (which caches and prefetchers send on their own) is refused with 405 and
// the method to use, and the value stays pending.
func TestTakeIsOnlyByPOST(t *testing.T) {
	cases := []struct {
		name   string
		method string
		path   string
	}{
		{name: "a GET of take is refused", method: http.MethodGet, path: "/v1/records/mailbox/take?timeout=0"},
		{name: "a HEAD of take is refused", method: http.MethodHead, path: "/v1/records/mailbox/take"},
		{name: "a PUT of take is refused", method: http.MethodPut, path: "/v1/records/mailbox/take"},
		{name: "a DELETE of take is refused", method: http.MethodDelete, path: "/v1/records/mailbox/take"},
		{name: "a GET of take is refused whatever the record", method: http.MethodGet, path: "/v1/records/nope/take"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consumerapi.Config{})
			push(t, f.mailbox, 1)
			status, body, hdr := f.call(t, tc.method, tc.path)
			if status != http.StatusMethodNotAllowed {
				t.Fatalf("got status %d (%s), want 405", status, body)
			}
			if got := hdr.Get("Allow"); got != http.MethodPost {
				t.Errorf("got Allow %q, want POST", got)
			}
			if tc.method != http.MethodHead {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, "use POST") {
					t.Errorf("got body %q, want a JSON error that says to use POST", body)
				}
			}
			if it, ok := f.mailbox.Peek(); !ok || it.Seq != 1 {
				t.Errorf("got pending (%+v, %v) after %s, want value 1 still pending", it, ok, tc.method)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	cases := []struct {
		name       string
		setup      func(f *fixture)
		method     string
		path       string
		wantStatus int
		// wantBody is a substring of the body.
		wantBody string
		// wantHeader is "Name: value".
		wantHeader string
	}{
		{name: "latest without a value is 204", method: "GET", path: "/v1/records/latest/latest", wantStatus: 204},
		{name: "latest returns the envelope with its sequence",
			setup:  func(f *fixture) { push(t, f.latest, 2) },
			method: "GET", path: "/v1/records/latest/latest", wantStatus: 200,
			wantBody: `"seq":2`, wantHeader: wire.HeaderSeq + ": 2"},
		{name: "latest of a ring is its newest value",
			setup:  func(f *fixture) { push(t, f.ring, 6) },
			method: "GET", path: "/v1/records/ring/latest", wantStatus: 200, wantBody: `"base64":"djY="`},
		{name: "latest in raw format returns the payload itself",
			setup:  func(f *fixture) { push(t, f.latest, 1) },
			method: "GET", path: "/v1/records/latest/latest?format=raw", wantStatus: 200,
			wantBody: "v1", wantHeader: "Content-Type: application/octet-stream"},
		{name: "latest of a Mailbox leaves the value pending",
			setup:  func(f *fixture) { push(t, f.mailbox, 1); _, _, _ = f.call(t, "GET", "/v1/records/mailbox/latest") },
			method: "POST", path: "/v1/records/mailbox/take?timeout=0", wantStatus: 200, wantBody: `"seq":1`},
		{name: "an unknown format is refused", method: "GET", path: "/v1/records/latest/latest?format=xml", wantStatus: 400},
		{name: "an unknown record is 404", method: "GET", path: "/v1/records/nope/latest", wantStatus: 404, wantBody: `no record`},
		{name: "take without a value and without waiting is 204",
			method: "POST", path: "/v1/records/mailbox/take?timeout=0", wantStatus: 204},
		{name: "take waits up to its timeout, then is 204",
			method: "POST", path: "/v1/records/mailbox/take?timeout=30ms", wantStatus: 204},
		{name: "take accepts the timeout in seconds",
			method: "POST", path: "/v1/records/mailbox/take?timeout=0.01", wantStatus: 204},
		{name: "take returns the pending value",
			setup:  func(f *fixture) { push(t, f.mailbox, 3) },
			method: "POST", path: "/v1/records/mailbox/take", wantStatus: 200, wantBody: `"seq":3`},
		{name: "take refuses a timeout it cannot read", method: "POST", path: "/v1/records/mailbox/take?timeout=soon", wantStatus: 400},
		{name: "take is only for Mailbox records", method: "POST", path: "/v1/records/ring/take", wantStatus: 409, wantBody: "Mailbox"},
		{name: "take on a closed record is 503",
			setup:  func(f *fixture) { f.mailbox.Close() },
			method: "POST", path: "/v1/records/mailbox/take", wantStatus: 503},
		{name: "a stream refuses an unknown start", method: "GET", path: "/v1/records/ring/events?from=middle", wantStatus: 400},
		{name: "a stream refuses a position that is not a number", method: "GET", path: "/v1/records/ring/events?after=x", wantStatus: 400,
			wantBody: `"error":"after: invalid event id`},
		{name: "a stream refuses an event id without its number", method: "GET", path: "/v1/records/ring/events?after=abc-", wantStatus: 400},
		{name: "a stream of a closed record is 503",
			setup:  func(f *fixture) { f.ring.Close() },
			method: "GET", path: "/v1/records/ring/events", wantStatus: 503},
		{name: "the list names every record",
			method: "GET", path: "/v1/records", wantStatus: 200, wantBody: `"name":"latest","type":"SingleLatest"`},
		{name: "a record's info has its capacity and newest sequence",
			setup:  func(f *fixture) { push(t, f.ring, 5) },
			method: "GET", path: "/v1/records/ring", wantStatus: 200, wantBody: `"capacity":4,"subject":"r","lastSeq":5`},
		{name: "responses name the record's type", method: "GET", path: "/v1/records/mailbox/latest", wantStatus: 204,
			wantHeader: wire.HeaderType + ": Mailbox"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consumerapi.Config{MaxTakeTimeout: time.Second})
			if tc.setup != nil {
				tc.setup(f)
			}
			status, body, hdr := f.call(t, tc.method, tc.path)
			if status != tc.wantStatus {
				t.Fatalf("got status %d (%s), want %d", status, body, tc.wantStatus)
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Errorf("got body %q, want it to contain %q", body, tc.wantBody)
			}
			if tc.wantHeader != "" {
				name, value, _ := strings.Cut(tc.wantHeader, ": ")
				if got := hdr.Get(name); got != value {
					t.Errorf("got header %s %q, want %q", name, got, value)
				}
			}
			if got := hdr.Get(wire.HeaderInstance); got != f.api.Instance() {
				t.Errorf("got instance header %q, want %q", got, f.api.Instance())
			}
		})
	}
}

func TestTakeWaitsForAValue(t *testing.T) {
	f := newFixture(t, consumerapi.Config{})
	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		status, body, _ := f.call(t, "POST", "/v1/records/mailbox/take?timeout=20s")
		done <- result{status, body}
	}()
	gomega.NewWithT(t).Eventually(func() int64 { return f.api.Stats("mailbox").Takes }).
		WithTimeout(10 * time.Second).Should(gomega.Equal(int64(1)))
	push(t, f.mailbox, 1)
	r := <-done
	if r.status != 200 || !strings.Contains(r.body, `"base64":"djE="`) {
		t.Errorf("got %d %s, want 200 with v1", r.status, r.body)
	}
}

func TestTakeTimeoutIsCapped(t *testing.T) {
	f := newFixture(t, consumerapi.Config{MaxTakeTimeout: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL+"/v1/records/mailbox/take?timeout=1h", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("take with a timeout over the cap: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("got status %d, want 204", resp.StatusCode)
	}
}

func TestAnInstanceThatCannotBeInAnEventIDIsRefused(t *testing.T) {
	b, _ := buffer.New[wire.Message](buffer.TypeMailbox, 0)
	for _, inst := range []string{"a b", "a\nb", "-a", strings.Repeat("x", 65)} {
		if _, err := consumerapi.New(consumerapi.Config{Instance: inst}, consumerapi.Record{Name: "a", Buffer: b}); !errors.Is(err, consumerapi.ErrInvalidInstance) {
			t.Errorf("instance %q: got %v, want ErrInvalidInstance", inst, err)
		}
	}
}

func TestDuplicateRecordNamesAreRefused(t *testing.T) {
	b, _ := buffer.New[wire.Message](buffer.TypeMailbox, 0)
	_, err := consumerapi.New(consumerapi.Config{}, consumerapi.Record{Name: "a", Buffer: b}, consumerapi.Record{Name: "a", Buffer: b})
	if !errors.Is(err, consumerapi.ErrDuplicateRecord) {
		t.Errorf("got %v, want ErrDuplicateRecord", err)
	}
}
