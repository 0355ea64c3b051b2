// Command sidecar is recbuf's buffer process: it takes a record in from
// NATS, holds it in a SpmcRing, SingleLatest or Mailbox buffer and serves
// it to consumers over HTTP (docs/consumer-api.md).
//
// In a cluster the manager runs it with one record per pod:
//
//	sidecar --record-namespace default --record-name telemetry \
//	  --buffer-type SpmcRing --capacity 1024 \
//	  --nats-url nats://nats:4222 --nats-subject devices.telemetry
//
// Standalone, with an in-process NATS server and several records:
//
//	sidecar --embedded-nats 127.0.0.1:4222 --http-addr 127.0.0.1:8080 \
//	  --record telemetry=SpmcRing:1024@devices.telemetry \
//	  --record state=SingleLatest@devices.state \
//	  --record commands=Mailbox@devices.commands
//
// Add --embedded-mqtt 127.0.0.1:1883 and MQTT 3.1.1 devices can publish
// too (topic devices/state is subject devices.state; docs/edge.md).
//
// It shuts down gracefully on SIGTERM or SIGINT within --shutdown-grace.
// Run with -h for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/recbuf/recbuf/internal/sidecar"
)

func main() { os.Exit(run()) }

func run() int {
	cfg, err := sidecar.ParseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		_, _ = fmt.Fprintln(os.Stderr, "sidecar:", err)
		return 2
	}
	if limit, set := sidecar.SetGoMemoryLimit(cfg, os.Getenv); set {
		cfg.Logger.Info("Go memory limit set below the container's", "containerLimit", cfg.MemoryLimit, "goMemoryLimit", limit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := sidecar.Run(ctx, cfg); err != nil {
		cfg.Logger.Error("Buffer process failed", "error", err.Error())
		return 1
	}
	return 0
}
