// Package netcut is a TCP relay whose link a test can cut and restore: one
// client's connection to a real server fails while the server and every
// other client stay up, a fault no real server produces on demand.
//
// A Relay is safe for concurrent use.
package netcut

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Relay forwards every connection it accepts to a target address.
type Relay struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Start relays 127.0.0.1:random to target until the test ends.
func Start(tb testing.TB, target string) *Relay {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("netcut: listening: %v", err)
	}
	r := &Relay{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	tb.Cleanup(r.close)
	return r
}

// Addr is the relay's host:port.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Cut closes every relayed connection and refuses new ones (they are
// accepted and closed at once, as a dead link looks to a client that
// retries) until Restore.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = true
	for c := range r.conns {
		_ = c.Close()
	}
}

// Restore relays new connections again.
func (r *Relay) Restore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = false
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.cut {
			r.mu.Unlock()
			_ = c.Close()
			continue
		}
		r.mu.Unlock()
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		r.mu.Lock()
		if r.cut {
			r.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		r.conns[c], r.conns[up] = struct{}{}, struct{}{}
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(c, up)
		go r.pipe(up, c)
	}
}

// pipe copies from src to dst; when either side ends, both close.
func (r *Relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	// A reset link is what a cut is for: the copy's error says nothing new.
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	r.mu.Lock()
	delete(r.conns, dst)
	delete(r.conns, src)
	r.mu.Unlock()
}

func (r *Relay) close() {
	_ = r.ln.Close()
	r.Cut()
	r.wg.Wait()
}
