package sidecar_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/onsi/gomega"

	"github.com/recbuf/recbuf/internal/testutil/natstest"
)

// TestJetStreamClusterLosesTheStreamLeader runs a Record on a stream with
// three replicas on a three-server cluster, and stops the server that
// leads the stream while values flow: the buffer process keeps serving, a
// consumer that reconnects resumes without loss, and a buffer process
// started afterwards restores every value the stream acknowledged.
func TestJetStreamClusterLosesTheStreamLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers and a leader election")
	}
	const values = 60
	cluster := natstest.StartCluster(t, 3)
	nc, err := nats.Connect(cluster.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	rc := ring("r", 2*values)
	cfg := streamConfig(rc)
	cfg.Replicas = 3
	eventually(t, func() error {
		_, err := js.CreateStream(context.Background(), cfg)
		return err
	}).Should(gomega.Succeed(), "JetStream elects its leaders and creates the stream")
	rc.Stream = cfg.Name

	a := start(t, testConfig(cluster.URLs(), rc))
	eventually(t, a.Ready).Should(gomega.BeTrue())
	s := openSSE(t, a.eventsURL("r", ""), "")

	// Values 1..values, each acknowledged by the stream; a publish that
	// failed is retried with the same message id, which the stream
	// deduplicates, so each value is stored once.
	var (
		mu    sync.Mutex
		acked int
	)
	publishOne := func(i int) error {
		deadline := time.Now().Add(waitTimeout)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := js.Publish(ctx, rc.Subject, []byte("v"+strconv.Itoa(i)), jetstream.WithMsgID("v"+strconv.Itoa(i)))
			cancel()
			if err == nil {
				mu.Lock()
				acked = i
				mu.Unlock()
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("value %d not acknowledged within %s: %w", i, waitTimeout, err)
			}
			// No leader for a moment: back off a little and try again.
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := 1; i <= values/2; i++ {
		if err := publishOne(i); err != nil {
			t.Fatal(err)
		}
	}
	s.expect("1:v1", "2:v2", "3:v3")

	info, err := js.Stream(context.Background(), cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	leader := cluster.Named(info.CachedInfo().Cluster.Leader)
	if leader == nil {
		t.Fatalf("stream leader %q is none of the cluster's servers", info.CachedInfo().Cluster.Leader)
	}
	done := make(chan error, 1)
	go func() {
		for i := values/2 + 1; i <= values; i++ {
			if err := publishOne(i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	leader.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if acked != values {
		t.Fatalf("acknowledged %d values, want %d", acked, values)
	}
	mu.Unlock()

	// The consumer went away after 3 and comes back with its last id.
	s.close()
	resumed := openSSE(t, a.eventsURL("r", ""), s.lastID)
	for i := 4; i <= values; i++ {
		resumed.expect(strconv.Itoa(i) + ":v" + strconv.Itoa(i))
	}
	if !a.Ready() {
		t.Fatal("the buffer process is not ready after the leader was lost")
	}

	b := start(t, testConfig(cluster.URLs(), rc))
	eventually(t, b.Ready).Should(gomega.BeTrue(), "a new process restores from the remaining servers")
	restored := openSSE(t, b.eventsURL("r", "?from=oldest"), "")
	for i := 1; i <= values; i++ {
		restored.expect(strconv.Itoa(i) + ":v" + strconv.Itoa(i))
	}
}
