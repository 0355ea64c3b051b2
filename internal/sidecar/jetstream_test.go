package sidecar_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/onsi/gomega"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/pkg/client"
)

// jsFixture is a NATS server with JetStream and a client of it.
type jsFixture struct {
	srv *natstest.Server
	js  jetstream.JetStream
}

func newJSFixture(t *testing.T) *jsFixture {
	t.Helper()
	srv := natsServer(t, natstest.WithJetStream(t))
	js, err := jetstream.New(srv.Connect())
	if err != nil {
		t.Fatal(err)
	}
	return &jsFixture{srv: srv, js: js}
}

// streamConfig is the stream the manager makes for rc (the contract with
// it): a ring keeps capacity messages, the single-slot types one, the
// oldest discarded.
func streamConfig(rc sidecar.RecordConfig) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name: "recbuf_" + rc.Namespace + "_" + rc.Name, Subjects: []string{rc.Subject},
		MaxMsgs: 1, Discard: jetstream.DiscardOld, Storage: jetstream.FileStorage,
	}
	if rc.Type == buffer.TypeSpmcRing {
		cfg.MaxMsgs = int64(rc.Capacity)
	}
	return cfg
}

// durable creates rc's stream as the manager would and returns rc set to
// follow it.
func (f *jsFixture) durable(t *testing.T, rc sidecar.RecordConfig) sidecar.RecordConfig {
	t.Helper()
	cfg := streamConfig(rc)
	if _, err := f.js.CreateStream(context.Background(), cfg); err != nil {
		t.Fatalf("create stream %s: %v", cfg.Name, err)
	}
	rc.Stream = cfg.Name
	return rc
}

// replace deletes rc's stream and creates it again, as someone replacing
// it would: the same name, a new stream. The create is retried while the
// server refuses it: after a delete, nats-server removes the account's
// (then empty) streams directory in a goroutine (stream.go, stop with
// deleteFlag), which can pull the directory from under a create that
// follows at once ("error creating store for stream", seen in CI).
func (f *jsFixture) replace(t *testing.T, rc sidecar.RecordConfig) {
	t.Helper()
	if err := f.js.DeleteStream(context.Background(), rc.Stream); err != nil {
		t.Fatalf("delete stream %s: %v", rc.Stream, err)
	}
	cfg := streamConfigNamed(rc, rc.Stream)
	eventually(t, func() error {
		_, err := f.js.CreateStream(context.Background(), cfg)
		return err
	}).WithTimeout(waitTimeout).Should(gomega.Succeed(), "create stream %s again", cfg.Name)
}

// publish publishes "<prefix><i>" for i in [from, to], each acknowledged
// by JetStream.
func (f *jsFixture) publish(t *testing.T, subject, prefix string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := f.js.Publish(context.Background(), subject, []byte(prefix+strconv.Itoa(i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// startReady starts a buffer process of rc and waits until it is ready:
// restored from its stream.
func (f *jsFixture) startReady(t *testing.T, rc sidecar.RecordConfig) *running {
	t.Helper()
	r := start(t, testConfig(f.srv.URL(), rc))
	eventually(t, r.Ready).Should(gomega.BeTrue(), "ready once restored")
	return r
}

func (r *running) eventsURL(record, query string) string {
	return r.RecordURL(record) + "/events" + query
}

func TestJetStreamRestoresEachTypeAfterARestart(t *testing.T) {
	tests := []struct {
		name string
		rc   sidecar.RecordConfig
		run  func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig)
	}{
		{"a ring restores the newest capacity values the stream holds, numbered as the stream numbers them", ring("r", 5), func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig) {
			f.publish(t, rc.Subject, "v", 1, 3)
			first := f.startReady(t, rc)
			openSSE(t, first.eventsURL("r", "?from=oldest"), "").expect("1:v1", "2:v2", "3:v3")
			first.stop(t)
			f.publish(t, rc.Subject, "v", 4, 8)
			second := f.startReady(t, rc)
			s := openSSE(t, second.eventsURL("r", "?from=oldest"), "")
			s.expect("4:v4", "5:v5", "6:v6", "7:v7", "8:v8")
			f.publish(t, rc.Subject, "v", 9, 9)
			s.expect("9:v9")
		}},
		{"a SingleLatest restores the latest value", latest("l"), func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig) {
			f.publish(t, rc.Subject, "v", 1, 3)
			f.startReady(t, rc).stop(t)
			f.publish(t, rc.Subject, "v", 4, 4)
			v, err := f.startReady(t, rc).client(t, "l").Latest(context.Background())
			if err != nil || v.Seq != 4 || string(v.Payload) != "v4" {
				t.Fatalf("Latest: got %d %q %v, want 4 \"v4\"", v.Seq, v.Payload, err)
			}
		}},
		{"a Mailbox restores the pending value, and a value taken does not come back", mailbox("m"), func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig) {
			f.publish(t, rc.Subject, "cmd", 1, 1)
			first := f.startReady(t, rc)
			first.stop(t)
			second := f.startReady(t, rc)
			v, err := second.client(t, "m").Take(context.Background(), 0)
			if err != nil || string(v.Payload) != "cmd1" {
				t.Fatalf("Take after a restart: got %q %v, want \"cmd1\"", v.Payload, err)
			}
			second.stop(t)
			third := f.startReady(t, rc)
			if v, err := third.client(t, "m").Take(context.Background(), 0); !errors.Is(err, client.ErrNoValue) {
				t.Fatalf("Take after the value was taken and the process restarted: got %q %v, want ErrNoValue", v.Payload, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newJSFixture(t)
			tt.run(t, f, f.durable(t, tt.rc))
		})
	}
}

func TestJetStreamResume(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig)
	}{
		{"a consumer resumes on another process of the same Record exactly where it left off", func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig) {
			a, b := f.startReady(t, rc), f.startReady(t, rc)
			if a.Instance() != b.Instance() {
				t.Fatalf("instances: got %q and %q, want the same (the stream's)", a.Instance(), b.Instance())
			}
			s := openSSE(t, a.eventsURL("r", ""), "")
			f.publish(t, rc.Subject, "v", 1, 3)
			s.expect("1:v1", "2:v2", "3:v3")
			s.close()
			f.publish(t, rc.Subject, "v", 4, 5)
			b.waitProduced(t, "r", 5)
			openSSE(t, b.eventsURL("r", ""), s.lastID).expect("4:v4", "5:v5")
		}},
		{"a consumer ahead of a replica that has not caught up waits for its next value instead of a reset", func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig) {
			f.publish(t, rc.Subject, "v", 1, 5)
			a := f.startReady(t, rc)
			// As if another replica had delivered up to 7 already.
			s := openSSE(t, a.eventsURL("r", ""), a.Instance()+"-7")
			f.publish(t, rc.Subject, "v", 6, 8)
			s.expect("8:v8")
		}},
		{"a consumer whose next value the stream evicted gets the exact lag after a restart", func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig) {
			a := f.startReady(t, rc)
			s := openSSE(t, a.eventsURL("r", ""), "")
			f.publish(t, rc.Subject, "v", 1, 3)
			s.expect("1:v1", "2:v2", "3:v3")
			s.close()
			a.stop(t)
			// A ring of 5: the stream keeps 8..12, so 4..7 are gone.
			f.publish(t, rc.Subject, "v", 4, 12)
			b := f.startReady(t, rc)
			openSSE(t, b.eventsURL("r", ""), s.lastID).expect("lag:4", "8:v8", "9:v9", "10:v10", "11:v11", "12:v12")
		}},
		{"messages deleted from the stream surface as lag of exactly their count", func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig) {
			f.publish(t, rc.Subject, "v", 1, 5)
			st, err := f.js.Stream(context.Background(), rc.Stream)
			if err != nil {
				t.Fatal(err)
			}
			for _, seq := range []uint64{2, 3} {
				if err := st.DeleteMsg(context.Background(), seq); err != nil {
					t.Fatalf("delete %d: %v", seq, err)
				}
			}
			a := f.startReady(t, rc)
			openSSE(t, a.eventsURL("r", ""), a.Instance()+"-1").expect("lag:2", "4:v4", "5:v5")
		}},
		{"a stream deleted and created again is another numbering: a consumer of the old one resets", func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig) {
			f.publish(t, rc.Subject, "v", 1, 3)
			a := f.startReady(t, rc)
			old := a.Instance()
			a.stop(t)
			f.replace(t, rc)
			f.publish(t, rc.Subject, "w", 1, 1)
			b := f.startReady(t, rc)
			if b.Instance() == old {
				t.Fatalf("instance %q of the new stream is the old one's", old)
			}
			openSSE(t, b.eventsURL("r", ""), old+"-3").expect("reset:instance:3:1", "1:w1")
		}},
		{"a live capacity change keeps the values retained", func(t *testing.T, f *jsFixture, rc sidecar.RecordConfig) {
			f.publish(t, rc.Subject, "v", 1, 5)
			f.startReady(t, rc).stop(t)
			// The manager raises max_msgs with the capacity; the pods roll.
			bigger := rc
			bigger.Capacity = 8
			if _, err := f.js.UpdateStream(context.Background(), streamConfigNamed(bigger, rc.Stream)); err != nil {
				t.Fatal(err)
			}
			f.publish(t, rc.Subject, "v", 6, 8)
			b := f.startReady(t, bigger)
			openSSE(t, b.eventsURL("r", "?from=oldest"), "").expect("1:v1", "2:v2", "3:v3", "4:v4", "5:v5", "6:v6", "7:v7", "8:v8")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newJSFixture(t)
			tt.run(t, f, f.durable(t, ring("r", 5)))
		})
	}
}

func streamConfigNamed(rc sidecar.RecordConfig, name string) jetstream.StreamConfig {
	cfg := streamConfig(rc)
	cfg.Name = name
	return cfg
}

func TestJetStreamMailboxTwoReplicasNeverHandOutTheSameCommand(t *testing.T) {
	const commands = 20
	f := newJSFixture(t)
	rc := f.durable(t, mailbox("m"))
	replicas := []*running{f.startReady(t, rc), f.startReady(t, rc)}
	clients := []*client.Client{replicas[0].client(t, "m"), replicas[1].client(t, "m")}
	for i := 1; i <= commands; i++ {
		f.publish(t, rc.Subject, "cmd", i, i)
		// Both replicas hold the command before they compete for it.
		for _, c := range clients {
			eventually(t, func() uint64 {
				v, _ := c.Latest(context.Background())
				return v.Seq
			}).Should(gomega.BeEquivalentTo(i))
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			taken []string
		)
		for _, c := range clients {
			wg.Go(func() {
				v, err := c.Take(context.Background(), 0)
				switch {
				case err == nil:
					mu.Lock()
					taken = append(taken, string(v.Payload))
					mu.Unlock()
				case !errors.Is(err, client.ErrNoValue):
					t.Errorf("Take: %v", err)
				}
			})
		}
		wg.Wait()
		if want := "cmd" + strconv.Itoa(i); len(taken) != 1 || taken[0] != want {
			t.Fatalf("command %d: taken %q, want exactly once [%q]", i, taken, want)
		}
	}
}

// TestJetStreamFollowsThroughAServerRestart checks the ordered consumer
// recreates itself: values published after NATS came back are served.
func TestJetStreamFollowsThroughAServerRestart(t *testing.T) {
	f := newJSFixture(t)
	rc := f.durable(t, ring("r", 10))
	a := f.startReady(t, rc)
	s := openSSE(t, a.eventsURL("r", ""), "")
	f.publish(t, rc.Subject, "v", 1, 2)
	s.expect("1:v1", "2:v2")
	f.srv.Stop()
	f.srv.Restart()
	eventually(t, func() error {
		_, err := f.js.Publish(context.Background(), rc.Subject, []byte("v3"))
		return err
	}).WithTimeout(waitTimeout).Should(gomega.Succeed())
	s.expect("3:v3")
	if !a.Ready() {
		t.Fatal("not ready after NATS came back")
	}
}

func TestJetStreamStreamMissingAtStartIsWaitedFor(t *testing.T) {
	f := newJSFixture(t)
	rc := ring("r", 5)
	rc.Stream = streamConfig(rc).Name
	a := start(t, testConfig(f.srv.URL(), rc))
	if a.Ready() {
		t.Fatal("ready before the stream exists: it would serve nothing of it")
	}
	if _, err := f.js.CreateStream(context.Background(), streamConfig(rc)); err != nil {
		t.Fatal(err)
	}
	f.publish(t, rc.Subject, "v", 1, 2)
	eventually(t, a.Ready).Should(gomega.BeTrue(), "ready once the stream appeared and was restored")
	openSSE(t, a.eventsURL("r", "?from=oldest"), "").expect("1:v1", "2:v2")
}

func TestJetStreamStreamReplacedWhileFollowedStopsTheProcess(t *testing.T) {
	f := newJSFixture(t)
	rc := f.durable(t, ring("r", 5))
	cfg := testConfig(f.srv.URL(), rc)
	cfg.StreamCheck = 10 * time.Millisecond
	a := start(t, cfg)
	eventually(t, a.Ready).Should(gomega.BeTrue())
	f.replace(t, rc)
	select {
	case <-a.Done():
	case <-time.After(waitTimeout):
		t.Fatalf("still running %s after its stream was replaced", waitTimeout)
	}
	if err := a.Wait(); !errors.Is(err, sidecar.ErrStreamReplaced) {
		t.Fatalf("Wait: got %v, want ErrStreamReplaced (a restart restores from the new stream)", err)
	}
}
