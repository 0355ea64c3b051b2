package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// An event id names a position in one buffer process's numbering:
// "<instance>-<seq>", e.g. "c9e464bb5516de19-42". The consumer API puts it
// in the "id:" field of every value event, so that a client that can send
// no header of its own (a browser's EventSource) hands the instance back
// with the position when it reconnects: its automatic Last-Event-ID is the
// id of the last event it saw. A position from a restarted or different
// process is then told apart from this process's own.
//
// A bare "<seq>" is still accepted, with no instance: the ids of earlier
// versions, and what a person types with curl.

// MaxInstanceLen is the longest instance id accepted.
const MaxInstanceLen = 64

// ErrInvalidEventID is wrapped by ParseEventID's errors.
var ErrInvalidEventID = errors.New("invalid event id")

// ValidInstance reports whether s can be an instance id: 1 to
// MaxInstanceLen letters, digits, '.', '_' or '-', beginning and ending with
// a letter or digit. Nothing else may appear in an SSE id field or an HTTP
// header without escaping, and the ends keep "<instance>-<seq>" readable.
func ValidInstance(s string) bool {
	if s == "" || len(s) > MaxInstanceLen || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) }

// AppendEventID appends the event id of value seq numbered by instance;
// with instance "" it appends the bare sequence number.
func AppendEventID(dst []byte, instance string, seq uint64) []byte {
	if instance != "" {
		dst = append(dst, instance...)
		dst = append(dst, '-')
	}
	return strconv.AppendUint(dst, seq, 10)
}

// FormatEventID returns AppendEventID's id as a string.
func FormatEventID(instance string, seq uint64) string {
	return string(AppendEventID(make([]byte, 0, len(instance)+21), instance, seq))
}

// ParseEventID parses "<instance>-<seq>", or a bare "<seq>", for which it
// returns instance "". The sequence number is decimal, without sign; the
// instance is everything before the last '-' and must be ValidInstance.
func ParseEventID(s string) (instance string, seq uint64, err error) {
	num := s
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		instance, num = s[:i], s[i+1:]
		if !ValidInstance(instance) {
			return "", 0, fmt.Errorf("%w: %s: the instance before the last '-' is not 1 to %d letters, digits, '.', '_' or '-'",
				ErrInvalidEventID, Quote(s), MaxInstanceLen)
		}
	}
	// Say what an id looks like rather than pass on ParseUint's syntax
	// error for text that is no number at all.
	if num == "" || num[0] < '0' || num[0] > '9' {
		return "", 0, fmt.Errorf("%w: %s: want <instance>-<seq> or <seq>", ErrInvalidEventID, Quote(s))
	}
	seq, err = strconv.ParseUint(num, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return "", 0, fmt.Errorf("%w: %s: the sequence number is beyond 64 bits", ErrInvalidEventID, Quote(s))
	case err != nil:
		// Not strconv's error, which repeats the whole value.
		return "", 0, fmt.Errorf("%w: %s: the sequence number is not decimal digits", ErrInvalidEventID, Quote(s))
	}
	return instance, seq, nil
}

// maxQuoted is how much of a client's value error messages repeat: enough
// to recognise it, not so much that a 16 KiB header comes back whole.
const maxQuoted = 64

// Quote returns s quoted for an error message, cut to its first 64 bytes.
func Quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxQuoted]) + "..."
}
