package consumerapi

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults of Config.MaxRequests and Config.MaxRequestsPerClient. Every
// request in progress holds a connection, its goroutines and, for one that
// does not read, up to twice SendBufferBytes of socket memory. Unset,
// MaxRequests leaves room for MaxStreams streams and MaxTakes takes and
// DefaultMaxQuickRequests answers of latest, info and list besides (512
// with the default caps, 128 MiB of socket memory at worst), so that a
// Record's maxStreams is never cut by this cap. One client address may
// hold DefaultMaxRequestsPerClient, so that a single pod cannot take every
// slot.
const (
	DefaultMaxQuickRequests     = 192
	DefaultMaxRequestsPerClient = 64
)

// admission counts the requests in progress, in all and per client
// address, against Config.MaxRequests and Config.MaxRequestsPerClient.
// Streams, takes, latest, info and list all count: a cap on streams and
// takes alone let a few hundred /latest clients that never read hold as
// many handlers and connections as they liked. The per-client map holds
// only addresses with a request in progress, so it is bounded by
// MaxRequests.
type admission struct {
	all       slots
	perClient int
	mu        sync.Mutex
	clients   map[string]int
}

func newAdmission(maxAll, perClient int) *admission {
	return &admission{all: slots{max: int64(maxAll)}, perClient: perClient, clients: map[string]int{}}
}

// admit takes a slot for a request from client, or says which cap refused
// it; a nil refusal is undone by release.
func (a *admission) admit(client string) (refusedBy string) {
	a.mu.Lock()
	if a.clients[client] >= a.perClient {
		a.mu.Unlock()
		return "client"
	}
	a.clients[client]++
	a.mu.Unlock()
	if !a.all.acquire() {
		a.releaseClient(client)
		return "all"
	}
	return ""
}

func (a *admission) release(client string) {
	a.all.release()
	a.releaseClient(client)
}

func (a *admission) releaseClient(client string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.clients[client]--; a.clients[client] <= 0 {
		delete(a.clients, client)
	}
}

// clientAddress is the address a request's caps are counted under: the
// peer's IP without its port (each connection has a port of its own).
func clientAddress(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// admitRequest refuses, with 503 and Retry-After, a request beyond
// MaxRequestsPerClient for its address or MaxRequests in all, and counts
// it; otherwise it returns the function that gives its slot back.
func (s *Server) admitRequest(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	client := clientAddress(r)
	switch s.admission.admit(client) {
	case "client":
		s.clientRefused.Add(1)
		writeBusy(w, fmt.Sprintf("this buffer process serves %d requests at once from one address, its most: retry later", s.cfg.MaxRequestsPerClient))
		return nil, false
	case "all":
		s.requestsRefused.Add(1)
		writeBusy(w, fmt.Sprintf("this buffer process serves %d requests at once, its most: retry later", s.cfg.MaxRequests))
		return nil, false
	}
	return func() { s.admission.release(client) }, true
}

// answerDeadline is when the whole answer to r must be written, or zero
// for an event stream, which is long-lived by design and has a deadline
// per write only. A deadline per write alone would let a client that reads
// a large answer a little at a time hold its handler for as long as it
// likes. A take may first wait up to MaxTakeTimeout for a value.
func (s *Server) answerDeadline(r *http.Request, now time.Time) time.Time {
	switch {
	case strings.HasSuffix(r.URL.Path, "/events"):
		return time.Time{}
	case strings.HasSuffix(r.URL.Path, "/take"):
		return now.Add(s.cfg.MaxTakeTimeout + s.cfg.WriteTimeout)
	default:
		return now.Add(s.cfg.WriteTimeout)
	}
}
