// Package buffer holds records in memory with the three semantics of the
// buffer contract (docs/buffer-contract.md; the tests follow its rules):
// SpmcRing, a bounded broadcast ring with lag detection; SingleLatest,
// which keeps only the newest value; and Mailbox, a single slot whose
// unread value is overwritten and whose readers take values.
//
// # The contract in short
//
// A producer pushes values; Push never blocks and never fails while the
// buffer is open (there is no backpressure: a slow reader cannot slow the
// producer, it loses values instead, and the loss is counted). Every value
// gets a sequence number, starting at 1 and increasing by one per push;
// or, with PushSeq, the number a durable stream gave it, with gaps where
// the stream deleted values, which a ring's readers are told as exact lag
// (WithExternalSeq). WithTake lets a Mailbox's owner veto each take, as a
// durable Mailbox does to remove the value from its stream first.
// Readers subscribe and receive, blocking (Recv, which honours a
// context.Context) or not (TryRecv, which returns ErrEmpty):
//
//   - SpmcRing: every reader sees every value in order from where it
//     started (after the newest value by default; FromOldest; AfterSeq to
//     resume). A reader that falls more than the capacity behind receives a
//     *LaggedError with exactly how many values it missed, then reads on
//     from the oldest retained value. WithMaxBytes adds a byte budget: the
//     ring then also evicts its oldest values to stay within it, with the
//     same exact lag, and refuses a value larger than the whole budget
//     (*TooLargeError, the one case in which Push fails on an open buffer).
//   - SingleLatest: a reader receives the newest value it has not seen; a
//     new reader first receives the current value. Intermediate values are
//     skipped, never reported as lag.
//   - Mailbox: a receive takes the pending value; each value goes to at most
//     one reader.
//
// Close on a buffer lets each reader receive what it still may under its
// type's rules, then ErrClosed; Push and Subscribe then return ErrClosed.
// Close on a reader unsubscribes it at once, waking a parked Recv.
// Errors are matched with errors.Is (ErrClosed, ErrEmpty, ErrLagged) and
// errors.As (*LaggedError).
//
// # Concurrency
//
// All methods of the buffers are safe for concurrent use. A Reader is meant
// for one receiving goroutine at a time; its Close may be called from any
// goroutine. Values are copied in and out under a short lock per slot
// (never held while waiting), so Push never waits for a reader to receive:
// at most, for nanoseconds, for a reader copying out of the slot Push is
// about to overwrite. Push and receive allocate nothing in the steady state.
// A parked reader waits on a channel allocated once at Subscribe, and a
// producer signals it only when someone waits: pushing into a buffer that
// nobody waits on costs no channel operation. Recv returns a value that is
// already available even when its ctx is done; it checks ctx only before
// waiting.
//
// Stats can be called at any time without stopping producers or readers: it
// reads atomic counters, briefly excludes Subscribe and Reader.Close while
// it sums the per-reader ones, and (Mailbox) looks at the slot under its
// lock.
//
// # Counters
//
// Produced counts pushes and Delivered the values handed to readers, summed
// over readers. The loss counters are per type: LagEvents and LaggedValues
// (SpmcRing; LaggedValues sums over readers, so two slow readers missing the
// same value count it twice and the sum can exceed the number of distinct
// values evicted), Skipped (SingleLatest, summed over readers) and
// Overwrites (Mailbox). Evicted counts what a ring dropped to make room,
// for its capacity or its byte budget. For a ring reader, the values it received plus the
// values reported missed equal the values pushed after it started. A value
// received while another goroutine closes the same reader may be missing
// from Delivered.
package buffer
