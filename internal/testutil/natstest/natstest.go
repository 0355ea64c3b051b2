package natstest

import (
	"net"
	"net/url"
	"strconv"
	"strings"
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

// WithJetStream turns JetStream on, stored under a directory of tb's that
// outlives Stop, so that a restarted server has its streams back.
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

// Name is the server's name (server.Options.ServerName), "" when unset.
func (s *Server) Name() string { return s.opts.ServerName }

// Cluster is servers routed to each other in one NATS cluster on loopback,
// each with JetStream stored in a directory of its own.
type Cluster struct {
	Servers []*Server
}

// StartCluster starts n servers (natstest-0 … natstest-<n-1>) in one
// cluster and stops them when the test ends. JetStream may need a moment
// after it returns to elect its leaders: callers wait for the first
// stream they create.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("natstest: a free route port: %v", err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
	}
	c := &Cluster{}
	for i := range n {
		var routes []*url.URL
		for j, p := range ports {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
			}
		}
		dir := tb.TempDir()
		c.Servers = append(c.Servers, Start(tb, WithOptions(func(o *server.Options) {
			o.ServerName = "natstest-" + strconv.Itoa(i)
			o.JetStream, o.StoreDir = true, dir
			o.Cluster = server.ClusterOpts{Name: "natstest", Host: "127.0.0.1", Port: ports[i]}
			o.Routes = routes
		})))
	}
	return c
}

// URLs is every server's client URL, comma-separated, as nats.Connect and
// the buffer process take them.
func (c *Cluster) URLs() string {
	urls := make([]string, 0, len(c.Servers))
	for _, s := range c.Servers {
		urls = append(urls, s.URL())
	}
	return strings.Join(urls, ",")
}

// Named returns the server called name, nil for none.
func (c *Cluster) Named(name string) *Server {
	for _, s := range c.Servers {
		if s.Name() == name {
			return s
		}
	}
	return nil
}
