package sidecar_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/onsi/gomega"

	"github.com/recbuf/recbuf/internal/edgesim"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/testutil/poll"
	"github.com/recbuf/recbuf/internal/wire"
	"github.com/recbuf/recbuf/pkg/client"
)

func TestNATSRestart(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("r", 100)))
	readyz := "http://" + sc.MetricsAddr() + "/readyz"
	produced := `recbuf_buffer_produced_total{namespace="ns",record="r"}`
	if status, _ := get(t, readyz); status != http.StatusOK {
		t.Fatalf("readyz while connected: got %d, want 200", status)
	}
	col := stream(t, sc.client(t, "r"))
	col.waitConnected(t)
	publish(t, ns.Connect(nats.NoReconnect()), "in.r", "a", 1, 3)
	col.expectValues(t, "a", 1, 2, 3)

	ns.Stop()
	eventually(t, func() float64 { return sc.metric(t, "recbuf_nats_connected") }).Should(gomega.Equal(0.0),
		"recbuf_nats_connected while NATS is down")
	// Readable while NATS is down: the process stays in its Service and
	// serves what it holds; its NATS state is in the metric above.
	if status, body := get(t, readyz); status != http.StatusOK {
		t.Errorf("readyz while NATS is down: got %d (%s), want 200: the consumer API still serves", status, strings.TrimSpace(body))
	}
	if status, _ := get(t, "http://"+sc.MetricsAddr()+"/healthz"); status != http.StatusOK {
		t.Errorf("healthz while NATS is down: got %d, want 200 (the process is fine)", status)
	}
	if status, body := get(t, sc.RecordURL("r")+"/latest"); status != http.StatusOK || !strings.Contains(body, `"seq":3`) {
		t.Errorf("latest while NATS is down: got %d %s, want 200 with value 3", status, body)
	}
	oldest := stream(t, sc.client(t, "r"), client.FromOldest())
	oldest.expectValues(t, "a", 1, 2, 3)

	ns.Restart()
	eventually(t, sc.Connected).Should(gomega.BeTrue())
	if status, _ := get(t, readyz); status != http.StatusOK {
		t.Errorf("readyz after NATS came back: got %d, want 200", status)
	}
	eventually(t, func() int { return ns.Interest("in.r") }).Should(gomega.Equal(1))
	publish(t, ns.Connect(), "in.r", "b", 4, 6)
	// The stream stayed open through the outage; numbering continues.
	col.expectValues(t, "b", 4, 5, 6)
	if got := sc.metric(t, produced); got != 6 {
		t.Errorf("got %v produced, want 6", got)
	}
	if got := sc.metric(t, "recbuf_nats_reconnects_total"); got != 1 {
		t.Errorf("got %v reconnects, want 1", got)
	}
	if got := sc.metric(t, "recbuf_nats_connected"); got != 1 {
		t.Errorf("got recbuf_nats_connected %v, want 1", got)
	}
}

func TestStartsWhileNATSIsDown(t *testing.T) {
	ns := natsServer(t)
	ns.Stop()
	sc := start(t, testConfig(ns.URL(), ring("r", 10)))
	if sc.Ready() {
		t.Fatal("ready before its subscriptions ever reached NATS: it would serve nothing, and a rollout would stop the old pod first")
	}
	ns.Restart()
	eventually(t, sc.Ready).Should(gomega.BeTrue())
	eventually(t, func() int { return ns.Interest("in.r") }).Should(gomega.Equal(1))
	publish(t, ns.Connect(), "in.r", "v", 1, 1)
	eventually(t, func() float64 { return sc.metric(t, `recbuf_intake_received_total{namespace="ns",record="r"}`) }).Should(gomega.Equal(1.0))
}

func TestBadInputIsDroppedWhileServing(t *testing.T) {
	ns := natsServer(t)
	cfg := testConfig(ns.URL(), ring("r", 100))
	cfg.MaxMessageBytes = 64
	sc := start(t, cfg)
	col := stream(t, sc.client(t, "r"))
	col.waitConnected(t)
	pub := ns.Connect()
	send := func(data string, hdr ...string) {
		m := nats.NewMsg("in.r")
		m.Data = []byte(data)
		for i := 0; i < len(hdr); i += 2 {
			m.Header.Set(hdr[i], hdr[i+1])
		}
		if err := pub.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	send("good1")
	send(strings.Repeat("x", 65))
	send("bad header", wire.HeaderDeviceSeq, "-1")
	send("good2", wire.HeaderDevice, "d", wire.HeaderDeviceSeq, "1")
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	col.expectValues(t, "good", 1, 2)
	for _, tc := range []struct {
		metric string
		want   float64
	}{
		{`recbuf_intake_dropped_total{namespace="ns",reason="oversized",record="r"}`, 1},
		{`recbuf_intake_dropped_total{namespace="ns",reason="malformed",record="r"}`, 1},
		{`recbuf_intake_received_total{namespace="ns",record="r"}`, 2},
		{`recbuf_buffer_produced_total{namespace="ns",record="r"}`, 2},
	} {
		if got := sc.metric(t, tc.metric); got != tc.want {
			t.Errorf("got %s %v, want %v", tc.metric, got, tc.want)
		}
	}
	if !sc.Ready() {
		t.Error("not ready after bad input")
	}
}

func TestReportsArriveWithTheCounters(t *testing.T) {
	ns := natsServer(t)
	watcher := ns.Connect()
	reports := make(chan *nats.Msg, 1000)
	if _, err := watcher.ChanSubscribe(report.Wildcard("test.stats"), reports); err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(ns.URL(), mailbox("cmd"))
	cfg.ReportSubjectPrefix = "test.stats"
	cfg.ReportInterval = 20 * time.Millisecond
	cfg.MaxMessageBytes = 8
	sc := start(t, cfg)
	pub := ns.Connect()
	publish(t, pub, "in.cmd", "c", 1, 3)
	publish(t, pub, "in.cmd", "too long for the limit", 1, 1)
	// Take only once all four messages are in: a take between two of the
	// three pushes would leave one overwrite, not two.
	poll.Until(t, "the intake took in three values and dropped one", func() bool {
		return sc.metric(t, `recbuf_buffer_produced_total{namespace="ns",record="cmd"}`) == 3 &&
			sc.metric(t, `recbuf_intake_dropped_total{namespace="ns",reason="oversized",record="cmd"}`) == 1
	})
	if _, err := sc.client(t, "cmd").Take(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}

	deadline := time.After(waitTimeout)
	for {
		var m *nats.Msg
		select {
		case m = <-reports:
		case <-deadline:
			t.Fatal("no report with the expected counters")
		}
		if want := report.Subject("test.stats", "ns", "cmd", "pod-0"); m.Subject != want {
			t.Fatalf("got a report on %q, want %q", m.Subject, want)
		}
		var r report.Report
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		if r.Namespace != "ns" || r.Record != "cmd" || r.RecordUID != "uid-cmd" || r.Pod != "pod-0" {
			t.Fatalf("got report %+v, want ns/cmd uid-cmd from pod-0", r)
		}
		c := r.Counters
		if c.Produced == 3 && c.Delivered == 1 && c.Overwrites == 2 && c.Dropped == 1 {
			if c.LastMessageTime.IsZero() || r.Time.IsZero() {
				t.Errorf("got report %+v, want times set", r)
			}
			return
		}
	}
}

func TestAReportIsPublishedRightAfterConnecting(t *testing.T) {
	ns := natsServer(t)
	watcher := ns.Connect()
	sub, err := watcher.SubscribeSync(report.Wildcard(report.DefaultPrefix))
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	// The interval is an hour: only the report on connecting can arrive.
	start(t, testConfig(ns.URL(), ring("r", 1)))
	if _, err := sub.NextMsg(waitTimeout); err != nil {
		t.Fatalf("no report after connecting: %v", err)
	}
}

func TestGracefulShutdownLetsStreamsReadWhatRemains(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("r", 10)))
	publish(t, ns.Connect(), "in.r", "v", 1, 3)
	eventually(t, func() float64 { return sc.metric(t, `recbuf_buffer_produced_total{namespace="ns",record="r"}`) }).Should(gomega.Equal(3.0))

	resp, err := http.Get(sc.RecordURL("r") + "/events?from=oldest")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	begun := time.Now()
	sc.cancel()
	er := wire.NewEventReader(resp.Body, 0)
	var got []string
	for {
		ev, err := er.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		got = append(got, ev.Type+":"+ev.ID)
	}
	// An end event has no id of its own: SSE keeps the last one.
	id := func(seq uint64) string { return wire.FormatEventID(sc.Instance(), seq) }
	if want := []string{"message:" + id(1), "message:" + id(2), "message:" + id(3), "end:" + id(3)}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got events %v, want %v", got, want)
	}
	if err := sc.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	if took := time.Since(begun); took > sc.cfg.ShutdownGrace {
		t.Errorf("shutdown took %s, more than the grace of %s", took, sc.cfg.ShutdownGrace)
	}
	if _, err := http.Get(sc.RecordURL("r") + "/latest"); err == nil {
		t.Error("the consumer API still answers after shutdown")
	}
}

func TestShutdownCutsOffStreamsThatDoNotRead(t *testing.T) {
	ns := natsServer(t)
	cfg := testConfig(ns.URL(), ring("r", 100000))
	cfg.ShutdownGrace = 500 * time.Millisecond
	sc := start(t, cfg)
	pub := ns.Connect()
	big := strings.Repeat("x", 40000)
	for range 300 {
		if err := pub.Publish("in.r", []byte(big)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() float64 { return sc.metric(t, `recbuf_buffer_produced_total{namespace="ns",record="r"}`) }).Should(gomega.Equal(300.0))
	// A stream of ~16 MB (base64) that is never read: far more than socket
	// buffers hold.
	resp, err := http.Get(sc.RecordURL("r") + "/events?from=oldest")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	begun := time.Now()
	sc.cancel()
	if err := sc.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	if took := time.Since(begun); took > 5*cfg.ShutdownGrace {
		t.Errorf("shutdown took %s with a grace of %s", took, cfg.ShutdownGrace)
	}
}

func TestStandaloneMode(t *testing.T) {
	cfg, err := sidecar.ParseFlags([]string{
		"--embedded-nats", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--record", "telemetry=SpmcRing:1024@devices.telemetry",
		"--record", "state=SingleLatest@devices.state",
		"--record", "cmd=Mailbox@devices.cmd",
		"--log-level", "error",
	}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sc := start(t, cfg)
	if sc.NATSURL() == "" {
		t.Fatal("no embedded NATS URL")
	}
	_, body := get(t, "http://"+sc.HTTPAddr()+"/v1/records")
	for _, name := range []string{"telemetry", "state", "cmd"} {
		if !strings.Contains(body, `"name":"`+name+`"`) {
			t.Errorf("record list %s lacks %s", body, name)
		}
	}
	tel := stream(t, sc.client(t, "telemetry"))
	tel.waitConnected(t)

	nc, err := nats.Connect(sc.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	res, err := edgesim.Run(context.Background(), nc, edgesim.Config{
		TelemetrySubject: "devices.telemetry", StateSubject: "devices.state", CommandSubject: "devices.cmd",
		Devices: 2, Count: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[edgesim.StreamTelemetry] != 4 {
		t.Fatalf("got %v, want 4 telemetry readings published", res)
	}
	for i := range uint64(4) {
		v := tel.next(t)
		var reading edgesim.Telemetry
		if err := v.Decode(&reading); err != nil {
			t.Fatal(err)
		}
		if v.Seq != i+1 || v.Device != reading.Device || v.DeviceSeq != reading.Seq || v.Subject != "devices.telemetry" {
			t.Errorf("got value %+v with reading %+v, want seq %d and matching device fields", v, reading, i+1)
		}
	}
	// Each record's intake takes its messages in on its own: the telemetry
	// stream having all four says nothing of state and cmd yet.
	for _, name := range []string{"state", "cmd"} {
		poll.Until(t, name+" to take in all four", func() bool {
			_, body := get(t, "http://"+sc.HTTPAddr()+"/v1/records/"+name)
			return strings.Contains(body, `"lastSeq":4,`)
		})
	}
	st, err := sc.client(t, "state").Latest(context.Background())
	if err != nil || st.Seq != 4 {
		t.Errorf("state Latest: got seq %d %v, want 4", st.Seq, err)
	}
	cmd, err := sc.client(t, "cmd").Take(context.Background(), time.Second)
	if err != nil || cmd.Seq != 4 {
		t.Errorf("cmd Take: got seq %d %v, want 4", cmd.Seq, err)
	}
}

func TestStartFailsCleanly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Close() }()
	ns := natsServer(t)
	cases := []struct {
		name   string
		modify func(*sidecar.Config)
		want   error
	}{
		{name: "a busy HTTP port fails Start", modify: func(c *sidecar.Config) { c.HTTPAddr = busy.Addr().String() }},
		{name: "a busy metrics port fails Start", modify: func(c *sidecar.Config) { c.MetricsAddr = busy.Addr().String() }},
		{name: "a busy embedded NATS port fails Start", modify: func(c *sidecar.Config) { c.EmbeddedNATS = busy.Addr().String() }},
		{name: "a busy embedded MQTT port fails Start", modify: func(c *sidecar.Config) {
			c.EmbeddedNATS, c.EmbeddedMQTT = "127.0.0.1:0", busy.Addr().String()
		}},
		{name: "an embedded MQTT listener without the embedded NATS server is a configuration error",
			modify: func(c *sidecar.Config) { c.EmbeddedMQTT = "127.0.0.1:0" }, want: sidecar.ErrInvalidConfig},
		{name: "no record is a configuration error", modify: func(c *sidecar.Config) { c.Records = nil }, want: sidecar.ErrInvalidConfig},
		{name: "a missing credentials directory fails Start", modify: func(c *sidecar.Config) { c.NATS.CredentialsDir = t.TempDir() + "/nope" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(ns.URL(), ring("r", 1))
			tc.modify(&cfg)
			s, err := sidecar.Start(context.Background(), cfg)
			if err == nil {
				t.Fatalf("Start succeeded, want an error")
			}
			if s != nil {
				t.Errorf("got a sidecar with the error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMetricsEndpointExportsCounters(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("r", 7), latest("l")))
	col := stream(t, sc.client(t, "l"))
	col.waitConnected(t)
	_, body := get(t, "http://"+sc.MetricsAddr()+"/metrics")
	for _, want := range []string{
		`recbuf_buffer_capacity{namespace="ns",record="r",type="SpmcRing"} 7`,
		`recbuf_consumer_streams{namespace="ns",record="l"} 1`,
		`recbuf_consumer_requests_total{kind="stream",namespace="ns",record="l"} 1`,
		`recbuf_buffer_subscribers{namespace="ns",record="l"} 1`,
		`recbuf_nats_connected 1`,
		`go_goroutines `,
		`go_gc_gomemlimit_bytes `, // the soft limit SetGoMemoryLimit sets
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestStreamOfAnUnknownRecordFails(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("r", 1)))
	err := sc.client(t, "nope").Stream(context.Background(), client.HandlerFunc(func(context.Context, client.Value) error { return nil }))
	var se *client.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Errorf("got %v, want a 404 StatusError", err)
	}
}

func TestShutdownWhileNATSIsDown(t *testing.T) {
	ns := natsServer(t)
	cfg := testConfig(ns.URL(), ring("r", 10))
	cfg.ShutdownGrace = 2 * time.Second
	sc := start(t, cfg)
	ns.Stop()
	eventually(t, sc.Connected).Should(gomega.BeFalse())
	begun := time.Now()
	sc.cancel()
	if err := sc.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
	if took := time.Since(begun); took > cfg.ShutdownGrace {
		t.Errorf("shutdown took %s, more than the grace of %s", took, cfg.ShutdownGrace)
	}
}

// TestProfilingIsOffUnlessAsked: the metrics listener serves Go's runtime
// profiles only with Config.Profiling (--profiling).
func TestProfilingIsOffUnlessAsked(t *testing.T) {
	ns := natsServer(t)
	tests := []struct {
		name      string
		profiling bool
		want      int
	}{
		{"by default the metrics listener serves no profiles", false, http.StatusNotFound},
		{"with profiling on the metrics listener serves the profiles", true, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(ns.URL(), ring("r", 10))
			cfg.Profiling = tt.profiling
			sc := start(t, cfg)
			if status, _ := get(t, "http://"+sc.MetricsAddr()+"/debug/pprof/goroutine?debug=1"); status != tt.want {
				t.Errorf("GET /debug/pprof/goroutine: got %d, want %d", status, tt.want)
			}
			if status, _ := get(t, "http://"+sc.HTTPAddr()+"/debug/pprof/"); status == http.StatusOK {
				t.Errorf("GET /debug/pprof/ on the consumer listener: got 200, want the profiles only on the metrics listener")
			}
		})
	}
}
