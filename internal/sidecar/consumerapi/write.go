package consumerapi

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/recbuf/recbuf/internal/wire"
)

// deadlineWriter is the ResponseWriter every handler writes to. The
// server has no http.Server.WriteTimeout (streams are long-lived), so
// without it a client that stops reading would hold its handler, the
// connection's goroutines and what was being written to it for ever. It
// gives each write of at most wire.PieceBytes a deadline of its own,
// WriteTimeout from its start: a client that reads keeps its connection
// however large the answer, one that makes no progress for WriteTimeout is
// let go. WriteHeader refreshes the deadline too, since the header of an
// answer without a body (a take that waited, then 204) is written after the
// handler returns. The deadline does not outlive the answer: net/http
// clears it once the response is finished, before the connection waits
// for its next request.
//
// An answer that is no stream has, besides, a deadline for the whole
// (until): a client that reads a large answer a little at a time makes
// progress on every write, and would otherwise hold its handler for as
// long as it likes. No write's deadline goes beyond until.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	until   time.Time
}

// newDeadlineWriter returns w with a deadline of timeout per write, and
// one for the whole answer at until (zero: none).
func newDeadlineWriter(w http.ResponseWriter, timeout time.Duration, until time.Time) *deadlineWriter {
	dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout, until: until}
	dw.extend()
	return dw
}

// extend moves the deadline to timeout from now, or to until if sooner.
// ErrNotSupported (a ResponseWriter that is no connection, as
// httptest.ResponseRecorder) only loses the protection against stuck
// clients.
func (w *deadlineWriter) extend() {
	d := time.Now().Add(w.timeout)
	if !w.until.IsZero() && w.until.Before(d) {
		d = w.until
	}
	_ = w.rc.SetWriteDeadline(d)
}

func (w *deadlineWriter) WriteHeader(status int) {
	w.extend()
	w.ResponseWriter.WriteHeader(status)
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		w.extend()
		n, err := w.ResponseWriter.Write(p[:min(len(p), wire.PieceBytes)])
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Unwrap lets http.ResponseController reach the connection's Flush and
// deadlines.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// pieces lends the buffers through which latest and take encode a base64
// payload in pieces: a thousand answers at once then hold a thousand
// pieces, not a thousand copies of the value.
var pieces = sync.Pool{New: func() any {
	b := make([]byte, 0, wire.PieceBytes+1024)
	return &b
}}

// SendBufferBytes is the kernel send buffer ConnContext asks for each
// consumer connection (Linux doubles it for its bookkeeping): enough to
// keep a stream's writes flowing at cluster round-trip times.
const SendBufferBytes = 128 << 10

// ConnContext is the http.Server.ConnContext of the consumer API's server:
// it caps each connection's kernel send buffer at SendBufferBytes. Linux
// otherwise grows the send buffer of a connection whose client does not
// read to several MiB (up to tcp_wmem's maximum), which a few hundred such
// clients turn into GiBs of socket memory, charged to the pod's memory
// cgroup; and writes that the kernel absorbs never block, so the write
// timeout never lets such clients go.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*net.TCPConn); ok {
		// On failure the connection keeps the kernel's default, as before.
		_ = tc.SetWriteBuffer(SendBufferBytes)
	}
	return ctx
}
