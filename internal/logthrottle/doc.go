// Package logthrottle keeps a repeated event from flooding the log while
// still saying how often it happened: at most one line per interval, each
// line carrying the number of events it stands for.
//
// A Throttle only decides; the caller logs, with whatever logger it has
// (log/slog in the buffer process, logr in the manager):
//
//	if n, ok := t.Allow(); ok {
//		log.Warn("Dropped message", "reason", reason, "droppedSinceLastLog", n)
//	}
//
// Allow suits events that are worth a line at once (the first one is
// logged immediately, the following ones within the interval are summed
// into the next line). Add and Flush suit a caller that logs on its own
// schedule, such as a periodic tick: Add counts, Flush says when a line is
// due and how many events it covers.
//
// All methods are safe for concurrent use; none allocates or blocks beyond
// a short mutex.
package logthrottle
