// Package profiling is the one place that knows how recbuf's processes
// serve Go's runtime profiles (net/http/pprof): the paths and their
// handlers, for a server to mount behind whatever guards its listener.
//
// Importing net/http/pprof registers its handlers on http.DefaultServeMux
// too, but no recbuf server serves that mux (each has its own, and a test
// keeps it so): the profiles are reachable only where a server mounts
// Handlers, behind a flag that is off by default.
package profiling

import (
	"net/http"
	"net/http/pprof"
)

// Prefix is the path under which the profiles are served.
const Prefix = "/debug/pprof/"

// Handlers returns the profile endpoints by path, as net/http/pprof serves
// them: Prefix's index (which also serves every named profile, such as
// heap, goroutine, allocs, block and mutex, under Prefix), and the
// endpoints the index does not: cmdline, profile (CPU), symbol and trace.
func Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		Prefix:             http.HandlerFunc(pprof.Index),
		Prefix + "cmdline": http.HandlerFunc(pprof.Cmdline),
		Prefix + "profile": http.HandlerFunc(pprof.Profile),
		Prefix + "symbol":  http.HandlerFunc(pprof.Symbol),
		Prefix + "trace":   http.HandlerFunc(pprof.Trace),
	}
}

// Register mounts Handlers on mux.
func Register(mux *http.ServeMux) {
	for path, h := range Handlers() {
		mux.Handle(path, h)
	}
}
