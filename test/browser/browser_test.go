package browser

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/wire"
)

// fetchResult is what the page's tryFetch returns.
type fetchResult struct {
	Status   int    `json:"status"`
	Body     string `json:"body"`
	Seq      string `json:"seq"`
	Instance string `json:"instance"`
	Error    string `json:"error"`
}

// kinds lists the kinds of the events, with the sequence of values and
// the data of the others, for comparisons and messages.
func kinds(log []event) []string {
	out := make([]string, 0, len(log))
	for _, e := range log {
		switch {
		case e.Kind == "value":
			out = append(out, fmt.Sprintf("value %d %s %s", e.Seq, e.ID, e.JSON))
		case e.ReadyState != nil:
			out = append(out, fmt.Sprintf("%s %d", e.Kind, *e.ReadyState))
		case e.Data != nil:
			out = append(out, fmt.Sprintf("%s %s", e.Kind, e.Data))
		default:
			out = append(out, e.Kind)
		}
	}
	return out
}

func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestAPageOnAnAllowedOriginReadsAStreamInOrder(t *testing.T) {
	tab := newTab(t)
	site := newPages(t)
	buf := startBuffer(t, "--http-addr", "127.0.0.1:0", "--allowed-origins", site.URL, "--record", "telemetry=SpmcRing:64@devices.telemetry")
	nc := buf.connect(t)
	_, hdr, _ := buf.get(t, "/v1/records/telemetry")
	instance := hdr.Get(wire.HeaderInstance)

	load(t, tab, site)
	eval[bool](t, tab, `openStream(`+js(buf.url("/v1/records/telemetry/events"))+`), true`)
	waitFor(t, tab, `log.some(e => e.kind === "open")`)
	for i := 1; i <= 5; i++ {
		publish(t, nc, "devices.telemetry", fmt.Sprintf(`{"n":%d}`, i))
	}
	waitFor(t, tab, `log.filter(e => e.kind === "value").length >= 5`)

	got := kinds(events(t, tab))
	want := []string{"open"}
	for i := 1; i <= 5; i++ {
		want = append(want, fmt.Sprintf(`value %d %s-%d {"n":%d}`, i, instance, i, i))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the page saw\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAPageOnAnOriginNotListedIsBlockedByTheBrowser(t *testing.T) {
	tab := newTab(t)
	listed, other := newPages(t), newPages(t)
	buf := startBuffer(t, "--http-addr", "127.0.0.1:0", "--allowed-origins", listed.URL,
		"--record", "telemetry=SpmcRing:64@devices.telemetry", "--record", "commands=Mailbox@devices.commands")
	nc := buf.connect(t)
	publish(t, nc, "devices.telemetry", `{"n":1}`)
	publish(t, nc, "devices.commands", `{"command":"reboot"}`)
	buf.waitLastSeq(t, "telemetry", 1)
	buf.waitLastSeq(t, "commands", 1)

	load(t, tab, other)
	t.Run("its EventSource fails and is closed, not retried", func(t *testing.T) {
		eval[bool](t, tab, `openStream(`+js(buf.url("/v1/records/telemetry/events?from=oldest"))+`), true`)
		waitFor(t, tab, `log.length > 0`)
		// CLOSED (2): the browser refused the answer; a network error
		// would leave it CONNECTING (0), to retry.
		if got := kinds(events(t, tab)); strings.Join(got, ",") != "error 2" {
			t.Errorf("the page saw %q, want only an error with readyState CLOSED (2)", got)
		}
	})
	t.Run("its fetch of the latest value rejects", func(t *testing.T) {
		got := eval[fetchResult](t, tab, `tryFetch(`+js(buf.url("/v1/records/telemetry/latest"))+`)`)
		if !strings.Contains(got.Error, "TypeError") || got.Status != 0 {
			t.Errorf("got %+v, want the fetch rejected with a TypeError", got)
		}
	})
	t.Run("its take is stopped by the preflight and the value stays pending", func(t *testing.T) {
		got := eval[fetchResult](t, tab, `tryFetch(`+js(buf.url("/v1/records/commands/take?timeout=0"))+
			`, {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"})`)
		if !strings.Contains(got.Error, "TypeError") {
			t.Errorf("got %+v, want the fetch rejected with a TypeError", got)
		}
		// A POST the browser had sent would have taken it: the preflight
		// the server refused kept the browser from sending it.
		if status, hdr, body := buf.get(t, "/v1/records/commands/latest"); status != http.StatusOK || hdr.Get(wire.HeaderSeq) != "1" {
			t.Errorf("got latest %d %s (seq %q), want value 1 still pending", status, body, hdr.Get(wire.HeaderSeq))
		}
	})
}

func TestAPageTakesAMailboxValueByAPreflightedPOST(t *testing.T) {
	tab := newTab(t)
	site := newPages(t)
	buf := startBuffer(t, "--http-addr", "127.0.0.1:0", "--allowed-origins", site.URL, "--record", "commands=Mailbox@devices.commands")
	nc := buf.connect(t)
	publish(t, nc, "devices.commands", `{"command":"reboot"}`)
	buf.waitLastSeq(t, "commands", 1)

	load(t, tab, site)
	// Content-Type: application/json makes the POST one a browser
	// preflights.
	got := eval[fetchResult](t, tab, `tryFetch(`+js(buf.url("/v1/records/commands/take?timeout=5s"))+
		`, {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"})`)
	if got.Error != "" || got.Status != http.StatusOK {
		t.Fatalf("got %+v, want 200", got)
	}
	var env struct {
		Seq  uint64          `json:"seq"`
		JSON json.RawMessage `json:"json"`
	}
	if err := json.Unmarshal([]byte(got.Body), &env); err != nil || env.Seq != 1 || string(env.JSON) != `{"command":"reboot"}` {
		t.Errorf("got body %q, want the envelope of value 1 {\"command\":\"reboot\"}", got.Body)
	}
	// Readable only because the API exposes them.
	_, hdr, _ := buf.get(t, "/v1/records/commands")
	if got.Seq != "1" || got.Instance != hdr.Get(wire.HeaderInstance) {
		t.Errorf("the page read Recbuf-Seq %q and Recbuf-Instance %q, want 1 and %q", got.Seq, got.Instance, hdr.Get(wire.HeaderInstance))
	}
	if status, _, body := buf.get(t, "/v1/records/commands/latest"); status != http.StatusNoContent {
		t.Errorf("got latest %d %s after the take, want 204: the value taken", status, body)
	}
}

func TestAPageReconnectsByItselfAfterARestartAndIsToldOfTheReset(t *testing.T) {
	tab := newTab(t)
	site := newPages(t)
	args := []string{"--allowed-origins", site.URL, "--record", "telemetry=SpmcRing:64@devices.telemetry"}
	first := startBuffer(t, append([]string{"--http-addr", "127.0.0.1:0"}, args...)...)
	_, hdr, _ := first.get(t, "/v1/records/telemetry")
	firstInstance := hdr.Get(wire.HeaderInstance)

	load(t, tab, site)
	eval[bool](t, tab, `openStream(`+js(first.url("/v1/records/telemetry/events"))+`), true`)
	waitFor(t, tab, `log.some(e => e.kind === "open")`)
	publish(t, first.connect(t), "devices.telemetry", `{"n":1}`, `{"n":2}`, `{"n":3}`)
	waitFor(t, tab, `log.filter(e => e.kind === "value").length >= 3`)

	// Memory mode: the values die with the process.
	first.kill(t)
	waitFor(t, tab, `log.some(e => e.kind === "error")`)
	second := startBuffer(t, append([]string{"--http-addr", first.http}, args...)...)
	_, hdr, _ = second.get(t, "/v1/records/telemetry")
	secondInstance := hdr.Get(wire.HeaderInstance)
	if secondInstance == firstInstance {
		t.Fatalf("both processes are instance %s", firstInstance)
	}
	// The page does nothing: its EventSource reconnects with
	// Last-Event-ID: <first>-3, which the new process did not number.
	waitFor(t, tab, `log.some(e => e.kind === "reset")`)
	publish(t, second.connect(t), "devices.telemetry", `{"n":4}`, `{"n":5}`)
	waitFor(t, tab, `log.filter(e => e.kind === "value").length >= 5`)

	var got, errs []string
	for _, k := range kinds(events(t, tab)) {
		if strings.HasPrefix(k, "error") {
			// One per failed attempt: how many depends on when the new
			// process listens. Each leaves the EventSource CONNECTING.
			errs = append(errs, k)
			if k != "error 0" {
				t.Errorf("got %q, want every error to leave the EventSource CONNECTING (0)", k)
			}
			if len(got) > 0 && got[len(got)-1] == "error" {
				continue
			}
			k = "error"
		}
		got = append(got, k)
	}
	want := []string{
		"open",
		`value 1 ` + firstInstance + `-1 {"n":1}`,
		`value 2 ` + firstInstance + `-2 {"n":2}`,
		`value 3 ` + firstInstance + `-3 {"n":3}`,
		"error",
		"open",
		`reset {"after":3,"lastSeq":0,"reason":"instance"}`,
		`value 1 ` + secondInstance + `-1 {"n":4}`,
		`value 2 ` + secondInstance + `-2 {"n":5}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the page saw (errors %q)\n%s\nwant\n%s", errs, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestASlowPageSeesLagEventsWithExactCounts(t *testing.T) {
	tab := newTab(t)
	site := newPages(t)
	buf := startBuffer(t, "--http-addr", "127.0.0.1:0", "--allowed-origins", site.URL, "--record", "slow=SpmcRing:4@devices.slow")
	nc := buf.connect(t)

	load(t, tab, site)
	eval[bool](t, tab, `holdOn = 1, openStream(`+js(buf.url("/v1/records/slow/events"))+`), true`)
	waitFor(t, tab, `log.some(e => e.kind === "open")`)
	publish(t, nc, "devices.slow", `{"n":1}`)
	select {
	case <-site.held:
	case <-time.After(waitTimeout):
		t.Fatalf("the page did not block on value 1 within %s; it logged %s", waitTimeout, pageLog(t, tab))
	}

	// The page's event loop is blocked: the browser stops reading the
	// connection once its buffers are full, the server's writes wait, and
	// the ring of 4 moves on without the stream. Publish until the
	// buffer process counts the stream's lag.
	big := `"` + strings.Repeat("x", 64<<10) + `"`
	published := uint64(1)
	deadline := time.Now().Add(2 * waitTimeout)
	for buf.metric(t, "recbuf_buffer_lagged_values_total", "slow") <= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no lag after %d values of 64 KiB in %s", published, 2*waitTimeout)
		}
		batch := make([]string, 16)
		for i := range batch {
			batch[i] = big
		}
		publish(t, nc, "devices.slow", batch...)
		published += uint64(len(batch))
		buf.waitLastSeq(t, "slow", published)
	}
	publish(t, nc, "devices.slow", `{"last":true}`)
	published++
	buf.waitLastSeq(t, "slow", published)
	site.Release()
	waitFor(t, tab, `log.some(e => e.kind === "value" && e.seq === `+strconv.FormatUint(published, 10)+`)`)

	log := events(t, tab)
	var prev, received, missed, lags uint64
	// pending is the count of the lag events since the last value: the
	// ring can evict again between a lag event and the value after it, so
	// that two lag events follow each other; their counts add up.
	var pending uint64
	for i, e := range log {
		switch e.Kind {
		case "open":
		case "value":
			received++
			if pending > 0 && e.Seq != prev+pending+1 {
				t.Errorf("event %d: value %d after value %d and lags of %d in all, want value %d", i, e.Seq, prev, pending, prev+pending+1)
			}
			if pending == 0 && e.Seq != prev+1 {
				t.Errorf("event %d: value %d after value %d without a lag event, want value %d", i, e.Seq, prev, prev+1)
			}
			prev, pending = e.Seq, 0
		case "lag":
			var d struct {
				Missed uint64 `json:"missed"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil || d.Missed == 0 || prev == 0 {
				t.Errorf("event %d: lag %s, want a lag of at least 1 after the first value", i, e.Data)
			}
			lags++
			missed += d.Missed
			pending += d.Missed
		default:
			t.Errorf("event %d: got %q, want only open, values and lags", i, kinds([]event{e}))
		}
	}
	if lags == 0 {
		t.Fatalf("the page saw no lag event in %d events", len(log))
	}
	if received+missed != published {
		t.Errorf("the page received %d values and was told of %d missed, want %d in all", received, missed, published)
	}
	// The page was told exactly what the buffer process counted.
	if got := buf.metric(t, "recbuf_buffer_lagged_values_total", "slow"); uint64(got) != missed {
		t.Errorf("the buffer process counts %v lagged values, the page was told of %d", got, missed)
	}
	if got := buf.metric(t, "recbuf_buffer_lag_events_total", "slow"); uint64(got) != lags {
		t.Errorf("the buffer process counts %v lag events, the page saw %d", got, lags)
	}
	t.Logf("%d values published: the page received %d and was told of %d missed in %d lag events", published, received, missed, lags)
}
