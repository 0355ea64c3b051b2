package consumerapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/wire"
)

// fuzzInstance is the instance of the server FuzzRequestParsing asks.
const fuzzInstance = "fuzz0instance"

// FuzzRequestParsing sends the consumer API requests whose query (after,
// from, timeout, format) and headers (Last-Event-ID, Recbuf-Instance) are
// anything at all, and holds the answers to the API's contract: no panic;
// a 4xx with a short JSON reason, never a 5xx; and a stream that either
// resumes at a position this process numbered or begins with a reset
// event, whose value events carry this instance's ids.
func FuzzRequestParsing(f *testing.F) {
	seeds := []struct{ after, from, timeout, format, lastEventID, instance string }{
		{},
		{after: "3"},
		{after: "0", from: "oldest"},
		{after: fuzzInstance + "-2"},
		{lastEventID: fuzzInstance + "-9"},
		{lastEventID: "another-2"},
		{lastEventID: "2", instance: "another"},
		{lastEventID: "2", instance: fuzzInstance},
		{lastEventID: "18446744073709551615"},
		{lastEventID: "18446744073709551616"},
		{after: "-1"},
		{after: "x-"},
		{after: "a b-1"},
		{from: "next"},
		{from: "middle"},
		{timeout: "0"},
		{timeout: "250ms"},
		{timeout: "1.5"},
		{timeout: "-1s"},
		{timeout: "1e309"},
		{timeout: "NaN"},
		{timeout: "9223372036854775807ns"},
		{format: "raw"},
		{format: "xml"},
		{lastEventID: "\x00"},
		{lastEventID: "i-1\r\nX: y"},
	}
	for _, s := range seeds {
		f.Add(s.after, s.from, s.timeout, s.format, s.lastEventID, s.instance)
	}

	ring, _ := buffer.New[wire.Message](buffer.TypeSpmcRing, 4)
	latest, _ := buffer.New[wire.Message](buffer.TypeSingleLatest, 0)
	mailbox, _ := buffer.New[wire.Message](buffer.TypeMailbox, 0)
	const newest = 10
	for _, b := range []buffer.Buffer[wire.Message]{ring, latest, mailbox} {
		for i := range newest {
			_ = b.Push(wire.Message{Data: []byte(`{"n":` + strconv.Itoa(i+1) + "}"), JSON: true, Subject: "s"})
		}
	}
	api, err := consumerapi.New(consumerapi.Config{
		Instance: fuzzInstance, MaxTakeTimeout: time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	},
		consumerapi.Record{Name: "ring", Buffer: ring},
		consumerapi.Record{Name: "latest", Buffer: latest},
		consumerapi.Record{Name: "mailbox", Buffer: mailbox},
	)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ring.Close(); latest.Close(); mailbox.Close() })

	f.Fuzz(func(t *testing.T, after, from, timeout, format, lastEventID, instance string) {
		q := url.Values{}
		for k, v := range map[string]string{"after": after, "from": from, "timeout": timeout, "format": format} {
			if v != "" {
				q.Set(k, v)
			}
		}
		hdr := http.Header{}
		if lastEventID != "" {
			hdr.Set("Last-Event-ID", lastEventID)
		}
		if instance != "" {
			hdr.Set(wire.HeaderInstance, instance)
		}
		for _, target := range []struct{ method, path string }{
			{http.MethodGet, "/v1/records/ring/events"},
			{http.MethodGet, "/v1/records/latest/events"},
			{http.MethodGet, "/v1/records/mailbox/events"},
			{http.MethodGet, "/v1/records/ring/latest"},
			{http.MethodPost, "/v1/records/mailbox/take"},
		} {
			// A stream runs until its client goes: this one has gone, so
			// the stream writes what it has at once, then ends.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			req := httptest.NewRequestWithContext(ctx, target.method, target.path+"?"+q.Encode(), nil)
			req.Header = hdr.Clone()
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			checkAnswer(t, target.path, rec, lastEventID, after, instance)
		}
	})
}

// checkAnswer holds one answer of FuzzRequestParsing to the contract.
func checkAnswer(t *testing.T, path string, rec *httptest.ResponseRecorder, lastEventID, after, instance string) {
	t.Helper()
	switch status := rec.Code; {
	case status == http.StatusOK, status == http.StatusNoContent:
	case status >= 400 && status < 500:
		var e struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("%s: got %d with body %q, want a JSON error", path, status, rec.Body.Bytes())
		}
		// A reason repeats a little of what the client sent, not all.
		if len(e.Error) > 512 {
			t.Fatalf("%s: got an error message of %d bytes", path, len(e.Error))
		}
		return
	default:
		t.Fatalf("%s: got status %d (%s), want 2xx or 4xx", path, status, rec.Body.Bytes())
	}
	if path != "/v1/records/ring/events" && path != "/v1/records/latest/events" && path != "/v1/records/mailbox/events" {
		return
	}

	// The position the stream was given, as the server reads it.
	id := lastEventID
	if id == "" {
		id = after
	}
	var (
		posInstance string
		seq         uint64
		err         error
	)
	if id != "" {
		if posInstance, seq, err = wire.ParseEventID(id); err != nil {
			t.Fatalf("%s: position %q is no event id, yet the stream was opened", path, id)
		}
		if posInstance == "" {
			posInstance = instance
		}
	}
	// The buffers hold values 1..10 and never more: 10 is the newest.
	wantReset := id != "" && ((posInstance != "" && posInstance != fuzzInstance) || seq > 10)

	er := wire.NewEventReader(bytes.NewReader(rec.Body.Bytes()), 0)
	gotReset := false
	for first := true; ; first = false {
		ev, err := er.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: the stream does not parse: %v", path, err)
		}
		switch ev.Type {
		case wire.EventReset:
			if !first {
				t.Fatalf("%s: a reset event after another event", path)
			}
			gotReset = true
		case wire.EventValue:
			inst, _, err := wire.ParseEventID(ev.ID)
			if err != nil || inst != fuzzInstance {
				t.Fatalf("%s: got value event id %q, want one of instance %s", path, ev.ID, fuzzInstance)
			}
		}
	}
	if gotReset != wantReset {
		t.Fatalf("%s with position %q (instance %q): got reset %v, want %v", path, id, posInstance, gotReset, wantReset)
	}
}
