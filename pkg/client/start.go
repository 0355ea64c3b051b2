package client

import (
	"fmt"
	"strconv"
	"strings"
)

// Start is where a stream begins when it has no position to resume from:
// at the next value pushed (the zero Start), at the oldest value a ring
// holds, or with the newest N values it holds. It is the one spelling of a
// start for every consumer of this package, the command-line tools
// included: ParseStart reads the text form ("next", "oldest", "last=N")
// that String writes and that the HTTP API's ?from=oldest and ?last=N
// mirror, so a tool's --from means the same everywhere.
//
// A Start only decides the first connection: once a value arrived, a
// reconnect resumes after it whatever the Start.
type Start struct {
	oldest bool
	last   uint64 // > 0: last=N; then oldest is false
}

// StartNext starts with the next value pushed: no backfill. It is the
// default and the zero Start.
var StartNext = Start{}

// StartOldest starts at the oldest value a ring still holds.
var StartOldest = Start{oldest: true}

// StartLast starts with the newest n values a ring holds (all of them
// when it holds fewer), then the live ones. n = 0 asks for no backfill:
// it is StartNext.
func StartLast(n uint64) Start { return Start{last: n} }

// Oldest reports whether s starts at the oldest value held.
func (s Start) Oldest() bool { return s.oldest }

// Last is N for a start "last=N", 0 for the others. Only SpmcRing records
// serve such a start: the other types refuse it (a *StatusError 409).
func (s Start) Last() uint64 { return s.last }

// String is s as ParseStart reads it: "next", "oldest" or "last=N".
func (s Start) String() string {
	switch {
	case s.last > 0:
		return "last=" + strconv.FormatUint(s.last, 10)
	case s.oldest:
		return "oldest"
	}
	return "next"
}

// ParseStart reads a start as command lines write it: "next", "oldest" or
// "last=N" with N a positive integer. Its errors quote s and say what is
// wrong, so that a tool only prefixes its flag's name.
func ParseStart(s string) (Start, error) {
	switch s {
	case "next":
		return StartNext, nil
	case "oldest":
		return StartOldest, nil
	}
	v, ok := strings.CutPrefix(s, "last=")
	if !ok {
		return Start{}, fmt.Errorf("%q: want next, oldest or last=N", s)
	}
	// ParseUint alone would take "last=0" and refuse "last=+3" with a
	// message about syntax: one reason for every bad N reads better.
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return Start{}, fmt.Errorf("%q: N must be a positive integer", s)
	}
	return StartLast(n), nil
}

// From starts the stream at s (see Start). Of From, FromOldest and Last,
// the last one given wins.
func From(s Start) StreamOption { return func(c *streamConfig) { c.start = s } }

// FromOldest starts a ring stream at the oldest value the buffer still
// holds instead of the next one pushed: From(StartOldest).
func FromOldest() StreamOption { return From(StartOldest) }

// Last starts a ring stream with the newest n values the buffer holds
// (all of them when it holds fewer), then goes on with the live ones;
// OnBackfill tells how many came. Once a value arrived, a reconnect
// resumes after it instead. n = 0 is the default start. Only SpmcRing
// records backfill: the others refuse a stream with Last (a *StatusError
// 409), since their streams begin with the one value they hold anyway.
// It is From(StartLast(n)).
func Last(n uint64) StreamOption { return From(StartLast(n)) }
