package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/pkg/client"
)

// standalone runs a buffer process with an embedded NATS server, as
// `sidecar --embedded-nats ... --record ...` does, and returns a NATS
// connection to publish with and a function that stops everything.
func standalone(records ...string) (*sidecar.Sidecar, *nats.Conn, func()) {
	args := []string{"--embedded-nats", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-level", "error"}
	for _, r := range records {
		args = append(args, "--record", r)
	}
	cfg, err := sidecar.ParseFlags(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc, err := sidecar.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	nc, err := nats.Connect(sc.NATSURL())
	if err != nil {
		log.Fatal(err)
	}
	return sc, nc, func() { nc.Close(); cancel(); _ = sc.Wait() }
}

func ExampleClient_Stream() {
	sc, nc, stop := standalone("telemetry=SpmcRing:1024@devices.telemetry")
	defer stop()

	c, err := client.New(sc.RecordURL("telemetry"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type reading struct {
		Temperature float64 `json:"temperature"`
	}
	err = c.Stream(ctx, client.HandlerFunc(func(_ context.Context, v client.Value) error {
		var r reading
		if err := v.Decode(&r); err != nil {
			return err
		}
		fmt.Printf("value %d: %.1f °C\n", v.Seq, r.Temperature)
		if v.Seq == 3 {
			cancel()
		}
		return nil
	}),
		client.OnLag(func(missed uint64) { fmt.Printf("missed %d values\n", missed) }),
		// A stream sees the values pushed after it connected: publish then.
		client.OnConnect(func(client.Connection) {
			for _, t := range []string{"21.5", "21.7", "21.6"} {
				_ = nc.Publish("devices.telemetry", []byte(`{"temperature":`+t+`}`))
			}
		}),
	)
	fmt.Println("stream ended:", err)
	// Output:
	// value 1: 21.5 °C
	// value 2: 21.7 °C
	// value 3: 21.6 °C
	// stream ended: context canceled
}

func ExampleClient_Latest() {
	sc, nc, stop := standalone("state=SingleLatest@devices.state")
	defer stop()

	c, err := client.New(sc.RecordURL("state"))
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := c.Latest(context.Background()); errors.Is(err, client.ErrNoValue) {
		fmt.Println("no state yet")
	}
	_ = nc.Publish("devices.state", []byte(`{"state":"idle"}`))
	_ = nc.Publish("devices.state", []byte(`{"state":"online"}`))
	_ = nc.Flush()
	// The buffer process takes messages in asynchronously: poll until the
	// second one is there.
	deadline := time.Now().Add(10 * time.Second)
	v, err := c.Latest(context.Background())
	for (err != nil || v.Seq < 2) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		v, err = c.Latest(context.Background())
	}
	fmt.Printf("value %d: %s\n", v.Seq, v.Payload)
	// Output:
	// no state yet
	// value 2: {"state":"online"}
}

func ExampleClient_Take() {
	sc, nc, stop := standalone("commands=Mailbox@devices.commands")
	defer stop()

	c, err := client.New(sc.RecordURL("commands"))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = nc.Publish("devices.commands", []byte("reboot"))
	_ = nc.Flush()
	// Take waits up to a second for a command; it is then gone for
	// every other consumer.
	v, err := c.Take(context.Background(), time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("took %q (JSON: %v)\n", v.Payload, v.JSON)
	if _, err := c.Take(context.Background(), 0); errors.Is(err, client.ErrNoValue) {
		fmt.Println("mailbox empty")
	}
	// Output:
	// took "reboot" (JSON: false)
	// mailbox empty
}

// A command line's --from, parsed once: the Start goes to Stream with
// From, and prints back as it was typed.
func ExampleParseStart() {
	for _, flag := range []string{"oldest", "last=5", "last=0"} {
		start, err := client.ParseStart(flag)
		if err != nil {
			fmt.Println("--from", err)
			continue
		}
		_ = client.From(start) // an option for Client.Stream
		fmt.Println(start, start.Oldest(), start.Last())
	}
	// Output:
	// oldest true 0
	// last=5 false 5
	// --from "last=0": N must be a positive integer
}
