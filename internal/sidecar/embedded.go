package sidecar

import (
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/recbuf/recbuf/internal/wire"
)

// JetStream limits of the embedded server when MQTT is on. MQTT keeps its
// sessions, retained messages and QoS 1/2 state in JetStream streams, a
// few small messages per client and topic; the limits keep a laptop's
// disk and memory safe from a runaway publisher of retained messages.
const (
	embeddedJetStreamMaxMemory = 64 << 20
	embeddedJetStreamMaxStore  = 256 << 20
)

// embeddedNATS is the standalone mode's in-process NATS server, with its
// JetStream store directory when MQTT is on.
type embeddedNATS struct {
	srv *server.Server
	// storeDir is the temporary JetStream store, "" without JetStream.
	storeDir string
	// mqttAddr is the MQTT listener's host:port, "" without one.
	mqttAddr string
}

// splitListenAddr checks a host:port to listen on (port 0: any free port)
// and returns the port as nats-server reads it: its RANDOM_PORT for 0.
func splitListenAddr(what, addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s address %q: %w", ErrInvalidConfig, what, addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: %s port %q", ErrInvalidConfig, what, portStr)
	}
	if port == 0 {
		// nats-server reads 0 as "the default port" (4222, or MQTT off).
		return host, server.RANDOM_PORT, nil
	}
	// nats-server only logs a failure to listen; find out here instead,
	// with an error that says why.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", what, err)
	}
	_ = ln.Close()
	return host, port, nil
}

// startEmbeddedNATS starts an in-process NATS server on addr (host:port,
// port 0: any free port) that accepts payloads up to maxPayload, and never
// less than NATS's usual wire.DefaultMaxMessageBytes: a message above the
// buffer process's own limit then still arrives and is counted as dropped
// (oversized), as it would be with a default NATS server.
//
// With mqttAddr set it also listens for MQTT 3.1.1 clients there. NATS's
// MQTT needs JetStream, which then stores in a new temporary directory that
// stop removes: standalone sessions and retained messages last as long as
// the process.
func startEmbeddedNATS(addr string, maxPayload int, mqttAddr string) (*embeddedNATS, error) {
	host, port, err := splitListenAddr("embedded NATS", addr)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: "recbuf-standalone",
		Host:       host,
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: int32(min(max(maxPayload, wire.DefaultMaxMessageBytes), math.MaxInt32)),
	}
	e := &embeddedNATS{}
	if mqttAddr != "" {
		mqttHost, mqttPort, err := splitListenAddr("embedded MQTT", mqttAddr)
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "recbuf-jetstream-")
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: JetStream store for MQTT: %w", err)
		}
		e.storeDir = dir
		opts.JetStream = true
		opts.StoreDir = dir
		opts.JetStreamMaxMemory = embeddedJetStreamMaxMemory
		opts.JetStreamMaxStore = embeddedJetStreamMaxStore
		opts.MQTT = server.MQTTOpts{Host: mqttHost, Port: mqttPort}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		e.stop()
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	e.srv = ns
	go ns.Start()
	// Ready means every listener is up, MQTT's too.
	if !ns.ReadyForConnections(10 * time.Second) {
		e.stop()
		return nil, fmt.Errorf("embedded NATS on %s: not ready within 10s", addr)
	}
	if mqttAddr != "" {
		// The server wrote the port it chose into opts before it was ready.
		e.mqttAddr = net.JoinHostPort(opts.MQTT.Host, strconv.Itoa(opts.MQTT.Port))
	}
	return e, nil
}

// stop shuts the server down and removes its JetStream store.
func (e *embeddedNATS) stop() {
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	if e.storeDir != "" {
		_ = os.RemoveAll(e.storeDir)
	}
}
