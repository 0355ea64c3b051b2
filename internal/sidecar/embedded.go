package sidecar

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/recbuf/recbuf/internal/wire"
)

// startEmbeddedNATS starts an in-process NATS server on addr (host:port,
// port 0: any free port) that accepts payloads up to maxPayload, and never
// less than NATS's usual wire.DefaultMaxMessageBytes: a message above the
// buffer process's own limit then still arrives and is counted as dropped
// (oversized), as it would be with a default NATS server.
func startEmbeddedNATS(addr string, maxPayload int) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: embedded NATS address %q: %w", ErrInvalidConfig, addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: embedded NATS port %q", ErrInvalidConfig, portStr)
	}
	if port != 0 {
		// nats-server only logs a failure to listen; find out here instead,
		// with an error that says why.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: %w", err)
		}
		_ = ln.Close()
	} else {
		// nats-server reads 0 as its default port 4222.
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "recbuf-standalone",
		Host:       host,
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: int32(min(max(maxPayload, wire.DefaultMaxMessageBytes), math.MaxInt32)),
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS on %s: not ready within 10s", addr)
	}
	return ns, nil
}
