package natstest

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyTimeout bounds how long a starting server may take to accept clients.
const readyTimeout = 10 * time.Second

// Server is an embedded nats-server bound to one port for its whole life,
// across Stop and Restart.
type Server struct {
	tb   testing.TB
	opts server.Options

	mu  sync.Mutex
	srv *server.Server
}

// Option adjusts the server's options before it starts.
type Option func(*server.Options)

// WithMaxPayload sets the largest message the server accepts.
func WithMaxPayload(n int32) Option { return func(o *server.Options) { o.MaxPayload = n } }

// WithToken requires clients to present token.
func WithToken(token string) Option { return func(o *server.Options) { o.Authorization = token } }

// WithUserPassword requires clients to log in as user with password.
func WithUserPassword(user, password string) Option {
	return func(o *server.Options) { o.Username, o.Password = user, password }
}

// WithMQTT adds an MQTT listener on a free loopback port (stable across
// restarts, like the client port) and the JetStream, stored under a
// directory of tb's, that NATS's MQTT needs. MQTTAddr is its host:port.
func WithMQTT(tb testing.TB) Option {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("natstest: a free MQTT port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dir := tb.TempDir()
	return func(o *server.Options) {
		o.ServerName = "natstest"
		o.JetStream, o.StoreDir = true, dir
		o.MQTT = server.MQTTOpts{Host: "127.0.0.1", Port: port}
	}
}

// WithJetStream enables JetStream, stored under a directory of tb's that
// outlives Stop, so that streams survive a Restart.
func WithJetStream(tb testing.TB) Option {
	tb.Helper()
	dir := tb.TempDir()
	return func(o *server.Options) {
		o.ServerName = "natstest"
		o.JetStream, o.StoreDir = true, dir
	}
}

// WithOptions applies f to the server options, for settings (such as TLS)
// that have no helper here.
func WithOptions(f func(*server.Options)) Option { return Option(f) }

// Start runs a server on 127.0.0.1 on a random port and stops it when the
// test ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{tb: tb, opts: server.Options{
		Host:   "127.0.0.1",
		Port:   server.RANDOM_PORT,
		NoLog:  true,
		NoSigs: true,
	}}
	for _, o := range opts {
		o(&s.opts)
	}
	s.start()
	// Later restarts reuse the port the first start was given, so that
	// clients reconnect to the same URL.
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.tb.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.tb.Fatalf("natstest: new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		s.tb.Fatalf("natstest: server not ready within %s", readyTimeout)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
}

// URL is the server's client URL, stable across restarts.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Addr is the server's host:port, stable across restarts.
func (s *Server) Addr() string { return net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)) }

// MQTTAddr is the host:port of the MQTT listener (see WithMQTT), "" without
// one.
func (s *Server) MQTTAddr() string {
	if s.opts.MQTT.Port == 0 {
		return ""
	}
	return net.JoinHostPort(s.opts.MQTT.Host, strconv.Itoa(s.opts.MQTT.Port))
}

// Stop shuts the server down and waits until it is gone. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts a stopped server again on the same port.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		s.tb.Fatalf("natstest: restart of a running server")
	}
	s.start()
}

// Connect opens a client connection that is closed when the test ends.
func (s *Server) Connect(opts ...nats.Option) *nats.Conn {
	s.tb.Helper()
	nc, err := nats.Connect(s.URL(), opts...)
	if err != nil {
		s.tb.Fatalf("natstest: connect: %v", err)
	}
	s.tb.Cleanup(nc.Close)
	return nc
}

// Interest returns how many subscriptions the server has that match
// subject, so that a test can wait until a client's subscription is in
// place before it publishes.
func (s *Server) Interest(subject string) int {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return 0
	}
	return srv.GlobalAccount().Interest(subject)
}
