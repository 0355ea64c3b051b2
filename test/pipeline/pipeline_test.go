//go:build pipelinebench

package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

var (
	flagRates     = flag.String("rates", "10000,50000,100000,150000,200000,250000,300000,350000", "publish rates (msg/s) of the sweep: raw subscriber, then one SSE consumer")
	flagFanout    = flag.String("fanout", "64@50000,64@10000", "fan-out runs: CONSUMERS@RATE, comma-separated")
	flagDuration  = flag.Duration("duration", 2*time.Second, "publishing time of each run")
	flagCapacity  = flag.Int("capacity", 1024, "the SpmcRing's capacity")
	flagBinary    = flag.String("sidecar", "", "buffer process binary (default: go build ./cmd/sidecar)")
	flagOnly      = flag.String("only", "", "run only these readers of the sweep: raw, sse (default both)")
	flagProfile   = flag.String("profile", "", "directory into which each run's CPU profile of the process is written (enables --profiling)")
	flagSettleMax = flag.Duration("settle", time.Second, "how long a run waits, after publishing, for readers that make no progress")
)

// The payload: a JSON object of payloadBytes whose first field is the send
// time in Unix nanoseconds, 19 digits at a fixed offset.
const (
	payloadBytes = 128
	stampOff     = len(`{"t":`)
	stampLen     = 19
)

func payload(dst []byte, sent int64) {
	strconv.AppendInt(dst[:stampOff], sent, 10)
}

func newPayload() []byte {
	p := []byte(`{"t":0000000000000000000,"pad":"`)
	for len(p) < payloadBytes-2 {
		p = append(p, 'x')
	}
	return append(p, '"', '}')
}

func stamp(b []byte) int64 {
	var n int64
	for _, c := range b[:stampLen] {
		n = n*10 + int64(c-'0')
	}
	return n
}

// proc is the buffer process under test.
type proc struct {
	cmd       *exec.Cmd
	natsURL   string
	eventsURL string
	// metricsURL serves /debug/pprof/ with -profile.
	metricsURL string
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

func startProc(t *testing.T) *proc {
	bin := *flagBinary
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "sidecar")
		out, err := exec.Command("go", "build", "-o", bin, "../../cmd/sidecar").CombinedOutput()
		if err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	natsAddr, httpAddr, metricsAddr := freePort(t), freePort(t), freePort(t)
	args := []string{"--embedded-nats", natsAddr, "--http-addr", httpAddr, "--metrics-addr", metricsAddr,
		"--record", fmt.Sprintf("bench=SpmcRing:%d@bench", *flagCapacity),
		"--max-streams", "1000", "--max-requests-per-client", "1000", "--log-level", "warn"}
	if *flagProfile != "" {
		args = append(args, "--profiling")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	p := &proc{cmd: cmd, natsURL: "nats://" + natsAddr, eventsURL: "http://" + httpAddr + "/v1/records/bench/events", metricsURL: "http://" + metricsAddr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the buffer process is not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpu is the process's CPU time (user and system) from /proc, in clock
// ticks of 10 ms.
func (p *proc) cpu(t *testing.T) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reader is one consumer of a run.
type reader struct {
	got  atomic.Int64 // values received
	lags atomic.Int64 // values reported missed (lag events)
	lat  []int64      // latencies in ns (nil: not measured)
	nlat atomic.Int64
	err  atomic.Value
}

func (r *reader) record(sent int64) {
	if r.lat == nil {
		return
	}
	if i := r.nlat.Load(); int(i) < len(r.lat) {
		r.lat[i] = time.Now().UnixNano() - sent
		r.nlat.Store(i + 1)
	}
}

// sseFull reads a stream event by event, taking the latency of each value.
func sseFull(body io.Reader, r *reader) {
	br := bufio.NewReaderSize(body, 64<<10)
	lagPrefix := []byte(`data: {"missed":`)
	jsonKey := []byte(`"json":{"t":`)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			r.err.Store(err)
			return
		}
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		if bytes.HasPrefix(line, lagPrefix) {
			n, _ := strconv.ParseInt(string(bytes.TrimRight(line[len(lagPrefix):], "}\n")), 10, 64)
			r.lags.Add(n)
			continue
		}
		if i := bytes.Index(line, jsonKey); i >= 0 {
			r.record(stamp(line[i+len(jsonKey):]))
			r.got.Add(1)
		}
	}
}

// sseCount only counts value events ("\nid: ") and lag events, cheaply, so
// that 64 consumers in this process leave the cores to the process under
// test.
func sseCount(body io.Reader, r *reader) {
	const carry = 4
	idPat, lagPat := []byte("\nid: "), []byte("\nevent: lag")
	buf := make([]byte, 64<<10)
	k := 0
	for {
		n, err := body.Read(buf[k:])
		if n > 0 {
			chunk := buf[:k+n]
			r.got.Add(int64(bytes.Count(chunk, idPat)))
			if bytes.Contains(chunk, lagPat) {
				r.lags.Add(1) // a count of lag events, not of values
			}
			k = copy(buf, chunk[max(0, len(chunk)-carry):])
		}
		if err != nil {
			r.err.Store(err)
			return
		}
	}
}

type result struct {
	name            string
	rate, sent      int
	achieved        float64
	readers         []*reader
	procCPU, ownCPU time.Duration
	wall            time.Duration
}

func (res result) delivered() (sum int64, minGot int64) {
	minGot = int64(res.sent)
	for _, r := range res.readers {
		g := r.got.Load()
		sum += g
		minGot = min(minGot, g)
	}
	return sum, minGot
}

func pct(lat []int64, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return time.Duration(lat[min(len(lat)-1, int(float64(len(lat))*p))])
}

func (res result) String() string {
	sum, minGot := res.delivered()
	lost := int64(res.sent) - minGot
	var lat []int64
	for _, r := range res.readers {
		if r.lat != nil {
			lat = append(lat, r.lat[:r.nlat.Load()]...)
		}
	}
	slices.Sort(lat)
	perEv := time.Duration(0)
	if sum > 0 {
		perEv = res.procCPU / time.Duration(sum)
	}
	return fmt.Sprintf("%-8s rate=%-7d achieved=%-9.0f sent=%-7d readers=%-3d lost(max per reader)=%-7d p50=%-9v p99=%-9v p99.9=%-9v proc-cpu=%-7v cpu/event=%-8v bench-cpu=%v",
		res.name, res.rate, res.achieved, res.sent, len(res.readers), lost,
		pct(lat, 0.50).Round(time.Microsecond/10), pct(lat, 0.99).Round(time.Microsecond/10), pct(lat, 0.999).Round(time.Microsecond/10),
		res.procCPU, perEv, res.ownCPU.Round(time.Millisecond))
}

// publish sends rate messages per second for the run's duration, each
// with its send time, and returns how many it sent and the rate achieved.
func publish(t *testing.T, nc *nats.Conn, rate int) (int, float64) {
	n := int(float64(rate) * flagDuration.Seconds())
	msg := newPayload()
	start := time.Now()
	sent := 0
	for sent < n {
		due := min(n, int(time.Since(start).Seconds()*float64(rate))+1)
		if due <= sent {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		for ; sent < due; sent++ {
			payload(msg, time.Now().UnixNano())
			if err := nc.Publish("bench", msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return n, float64(n) / time.Since(start).Seconds()
}

// settle waits until every reader has every value, or until none made
// progress for flagSettleMax.
func settle(readers []*reader, n int) {
	last, since := int64(-1), time.Now()
	for time.Since(since) < *flagSettleMax {
		var sum int64
		done := true
		for _, r := range readers {
			g := r.got.Load()
			sum += g + r.lags.Load()
			done = done && g >= int64(n)
		}
		if done {
			return
		}
		if sum != last {
			last, since = sum, time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func runRaw(t *testing.T, p *proc, pub *nats.Conn, rate int) result {
	n := int(float64(rate) * flagDuration.Seconds())
	r := &reader{lat: make([]int64, n)}
	nc, err := nats.Connect(p.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("bench", func(m *nats.Msg) {
		r.record(stamp(m.Data[stampOff:]))
		r.got.Add(1)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return measure(t, p, pub, "raw", rate, []*reader{r})
}

func runSSE(t *testing.T, p *proc, pub *nats.Conn, rate, consumers int) result {
	n := int(float64(rate) * flagDuration.Seconds())
	ctx, cancel := context.WithCancel(context.Background())
	tr := &http.Transport{MaxConnsPerHost: 0, DisableCompression: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	readers := make([]*reader, consumers)
	var wg sync.WaitGroup
	for i := range readers {
		r := &reader{}
		if i == 0 {
			r.lat = make([]int64, n)
		}
		readers[i] = r
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.eventsURL, nil)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %s", i, resp.Status)
		}
		// The retry field comes first: the stream has subscribed.
		br := bufio.NewReaderSize(resp.Body, 64<<10)
		if _, err := br.ReadSlice('\n'); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { _ = resp.Body.Close() }()
			if i == 0 {
				sseFull(br, r)
			} else {
				sseCount(br, r)
			}
		}()
	}
	res := measure(t, p, pub, fmt.Sprintf("sse×%d", consumers), rate, readers)
	cancel()
	wg.Wait()
	return res
}

func measure(t *testing.T, p *proc, pub *nats.Conn, name string, rate int, readers []*reader) result {
	time.Sleep(100 * time.Millisecond) // let the process go idle
	c0, o0, w0 := p.cpu(t), selfCPU(), time.Now()
	var prof sync.WaitGroup
	if *flagProfile != "" {
		prof.Add(1)
		go func() {
			defer prof.Done()
			secs := max(1, int(flagDuration.Seconds()))
			resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.metricsURL, secs))
			if err != nil {
				t.Error(err)
				return
			}
			defer func() { _ = resp.Body.Close() }()
			b, _ := io.ReadAll(resp.Body)
			_ = os.WriteFile(filepath.Join(*flagProfile, fmt.Sprintf("%s-%d.pprof", name, rate)), b, 0o644)
		}()
	}
	n, achieved := publish(t, pub, rate)
	settle(readers, n)
	prof.Wait()
	res := result{name: name, rate: rate, sent: n, achieved: achieved, readers: readers,
		procCPU: p.cpu(t) - c0, ownCPU: selfCPU() - o0, wall: time.Since(w0)}
	fmt.Println(res)
	return res
}

func ints(t *testing.T, s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// TestPipeline is the benchmark: the sweep (per rate, the raw subscriber,
// then one SSE consumer, each alone with the process), then the fan-out
// runs. It prints one line per run.
func TestPipeline(t *testing.T) {
	p := startProc(t)
	pub, err := nats.Connect(p.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, rate := range ints(t, *flagRates) {
		if *flagOnly == "" || *flagOnly == "raw" {
			runRaw(t, p, pub, rate)
		}
		if *flagOnly == "" || *flagOnly == "sse" {
			runSSE(t, p, pub, rate, 1)
		}
	}
	for _, f := range strings.Split(*flagFanout, ",") {
		if f == "" {
			continue
		}
		c, r, ok := strings.Cut(f, "@")
		if !ok {
			t.Fatalf("fanout %q: want CONSUMERS@RATE", f)
		}
		cs, rs := ints(t, c), ints(t, r)
		runSSE(t, p, pub, rs[0], cs[0])
	}
}
