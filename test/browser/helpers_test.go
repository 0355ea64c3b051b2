package browser

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/testutil/poll"
)

// chromiumPath is Debian's Chromium (apt-get install chromium); the tests
// never download one.
const chromiumPath = "/usr/bin/chromium"

// waitTimeout bounds every wait on a condition in these tests.
const waitTimeout = 30 * time.Second

var (
	// binDir holds the buffer process built for the package's tests.
	binDir string

	buildOnce sync.Once
	sidecar   string
	buildErr  error

	browserOnce   sync.Once
	browserCtx    context.Context
	browserErr    error
	stopBrowser   = func() {}
	browserOutput lockedBuffer
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "recbuf-browser-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	stopBrowser()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// lockedBuffer is a bytes.Buffer for the browser's output, which its
// process writes while a test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// needBrowser skips the test when Chromium is not installed, or fails it
// when RECBUF_REQUIRE_BROWSER=1 says the browser tests must run.
func needBrowser(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("RECBUF_REQUIRE_BROWSER") == "1" {
			t.Fatalf("no browser at %s (RECBUF_REQUIRE_BROWSER=1): apt-get install -y --no-install-recommends chromium", chromiumPath)
		}
		t.Skipf("no browser at %s: apt-get install -y --no-install-recommends chromium, or set RECBUF_REQUIRE_BROWSER=1 to fail instead", chromiumPath)
	}
}

// newTab opens a tab of the package's browser, started at the first call,
// and closes it when the test ends.
func newTab(t *testing.T) context.Context {
	t.Helper()
	needBrowser(t)
	browserOnce.Do(func() {
		userData, err := os.MkdirTemp(binDir, "chromium-")
		if err != nil {
			browserErr = err
			return
		}
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(chromiumPath),
			chromedp.Flag("headless", true),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			// The machine has no network but loopback: without these,
			// Chromium keeps trying to reach Google's services.
			chromedp.Flag("disable-quic", true),
			chromedp.NoFirstRun,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(userData),
			chromedp.CombinedOutput(&browserOutput),
		)
		ctx, cancel := chromedp.NewContext(allocCtx)
		// The first Run starts the browser, for as long as ctx lives.
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			cancel()
			cancelAlloc()
			browserErr = fmt.Errorf("starting %s: %w", chromiumPath, err)
			return
		}
		browserCtx = ctx
		stopBrowser = func() { cancel(); cancelAlloc() }
	})
	if browserErr != nil {
		t.Fatalf("%v\n%s", browserErr, browserOutput.String())
	}
	tab, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	return tab
}

// event is one entry of window.log, what the page of pageHTML saw.
type event struct {
	Kind       string          `json:"kind"`
	ID         string          `json:"id,omitempty"`
	Seq        uint64          `json:"seq,omitempty"`
	JSON       json.RawMessage `json:"json,omitempty"`
	ReadyState *int            `json:"readyState,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// pageHTML is the page the tests load: it opens streams and fetches as a
// web application would, and logs what it sees in window.log.
const pageHTML = `<!doctype html>
<meta charset="utf-8">
<title>recbuf browser test</title>
<script>
window.log = [];
// holdOn, when set to a sequence number, makes the page block its event
// loop once that value arrived, until the test releases /hold: a page too
// busy to read its stream.
window.holdOn = 0;
function openStream(url) {
  const es = new EventSource(url);
  window.es = es;
  es.onopen = () => log.push({kind: "open"});
  es.onerror = () => log.push({kind: "error", readyState: es.readyState});
  es.onmessage = (e) => {
    const v = JSON.parse(e.data);
    const small = JSON.stringify(v.json).length <= 100;
    log.push({kind: "value", id: e.lastEventId, seq: v.seq, json: small ? v.json : "big"});
    if (v.seq === window.holdOn) {
      const x = new XMLHttpRequest();
      x.open("GET", "/hold", false); // synchronous: the event loop waits
      x.send();
    }
  };
  for (const type of ["lag", "reset", "backfill", "end"]) {
    es.addEventListener(type, (e) => log.push({kind: type, data: JSON.parse(e.data)}));
  }
}
async function tryFetch(url, init) {
  try {
    const r = await fetch(url, init);
    return {status: r.status, body: await r.text(), seq: r.headers.get("Recbuf-Seq"), instance: r.headers.get("Recbuf-Instance")};
  } catch (e) {
    return {error: String(e)};
  }
}
</script>
`

// pages serves pageHTML from an origin of its own, and /hold, which
// answers once release is called.
type pages struct {
	*httptest.Server
	held        chan struct{} // closed when /hold is first asked
	heldOnce    sync.Once
	release     chan struct{}
	releaseOnce sync.Once
}

func newPages(t *testing.T) *pages {
	t.Helper()
	p := &pages{held: make(chan struct{}), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, pageHTML)
	})
	mux.HandleFunc("GET /hold", func(w http.ResponseWriter, r *http.Request) {
		p.heldOnce.Do(func() { close(p.held) })
		select {
		case <-p.release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		p.Release()
		p.Close()
	})
	return p
}

// Release answers /hold.
func (p *pages) Release() { p.releaseOnce.Do(func() { close(p.release) }) }

// load loads the page in the tab.
func load(t *testing.T, tab context.Context, p *pages) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Navigate(p.URL)); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
}

// eval evaluates a JavaScript expression in the tab, awaiting a promise.
func eval[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the JavaScript expression is true in the tab.
func waitFor(t *testing.T, tab context.Context, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitTimeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(waitTimeout),
		chromedp.WithPollingInterval(10*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s in the page: %v; the page logged %s", expr, err, pageLog(t, tab))
	}
}

func pageLog(t *testing.T, tab context.Context) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 5*time.Second)
	defer cancel()
	b, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`window.log`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return string(b)
}

// events returns the page's log.
func events(t *testing.T, tab context.Context) []event {
	t.Helper()
	return eval[[]event](t, tab, `window.log`)
}

// buildSidecar builds cmd/sidecar once for the package.
func buildSidecar(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		sidecar = filepath.Join(binDir, "sidecar")
		out, err := exec.Command("go", "build", "-o", sidecar, "github.com/recbuf/recbuf/cmd/sidecar").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/sidecar: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return sidecar
}

// bufferProcess is a standalone buffer process (cmd/sidecar) with its
// embedded NATS server.
type bufferProcess struct {
	cmd                 *exec.Cmd
	http, metrics, nats string
	exited              chan struct{}
	stderr              lockedBuffer
}

// startBuffer starts the buffer process with args besides the embedded
// NATS server and the metrics address, and kills it when the test ends.
func startBuffer(t *testing.T, args ...string) *bufferProcess {
	t.Helper()
	args = append([]string{"--embedded-nats", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--shutdown-grace", "5s"}, args...)
	b := &bufferProcess{cmd: exec.Command(buildSidecar(t), args...), exited: make(chan struct{})}
	pipe, err := b.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.kill(t) })

	// The JSON log line "Buffer process started" says where it listens.
	started := make(chan error, 1)
	go func() {
		lines := bufio.NewScanner(pipe)
		found := false
		for lines.Scan() {
			_, _ = b.stderr.Write(append(lines.Bytes(), '\n'))
			if found {
				continue
			}
			var l struct{ Msg, HTTP, Metrics, NATS string }
			if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "Buffer process started" {
				b.http, b.metrics, b.nats = l.HTTP, l.Metrics, l.NATS
				found = true
				started <- nil
			}
		}
		if !found {
			started <- errors.New("the buffer process exited before it started")
		}
		_ = b.cmd.Wait()
		close(b.exited)
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("%v:\n%s", err, b.stderr.String())
		}
	case <-time.After(waitTimeout):
		t.Fatalf("the buffer process did not start within %s:\n%s", waitTimeout, b.stderr.String())
	}
	return b
}

// kill kills the process (SIGKILL: no graceful end for the streams) and
// waits for it to exit.
func (b *bufferProcess) kill(t *testing.T) {
	t.Helper()
	_ = b.cmd.Process.Kill()
	select {
	case <-b.exited:
	case <-time.After(waitTimeout):
		t.Errorf("the buffer process did not exit within %s of SIGKILL", waitTimeout)
	}
}

// url is the URL of path on the consumer API.
func (b *bufferProcess) url(path string) string { return "http://" + b.http + path }

// connect connects a NATS client to the process's embedded server.
func (b *bufferProcess) connect(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(b.nats, nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("connecting to NATS at %s: %v", b.nats, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// publish publishes the payloads and flushes, so that the server has
// routed them when it returns.
func publish(t *testing.T, nc *nats.Conn, subject string, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if err := nc.Publish(subject, []byte(p)); err != nil {
			t.Fatalf("publishing to %s: %v", subject, err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flushing: %v", err)
	}
}

// get answers a GET of the consumer API, from Go.
func (b *bufferProcess) get(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(b.url(path))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// lastSeq is the newest sequence number of a record.
func (b *bufferProcess) lastSeq(t *testing.T, record string) uint64 {
	t.Helper()
	status, _, body := b.get(t, "/v1/records/"+record)
	var info struct {
		LastSeq uint64 `json:"lastSeq"`
	}
	if err := json.Unmarshal([]byte(body), &info); status != http.StatusOK || err != nil {
		t.Fatalf("GET record %s: %d %s", record, status, body)
	}
	return info.LastSeq
}

// waitLastSeq waits until the record took in its value seq.
func (b *bufferProcess) waitLastSeq(t *testing.T, record string, seq uint64) {
	t.Helper()
	poll.UntilWithin(t, waitTimeout, fmt.Sprintf("record %s took in value %d", record, seq), func() bool { return b.lastSeq(t, record) >= seq })
}

// metric is the value of the metric name of record, -1 when absent.
func (b *bufferProcess) metric(t *testing.T, name, record string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + b.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		labels, value, ok := strings.Cut(line, " ")
		if ok && strings.HasPrefix(labels, name+"{") && strings.Contains(labels, `record="`+record+`"`) {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return -1
}
