package streams

import "strings"

// Prefix starts the name of every stream the manager creates.
const Prefix = "recbuf_"

// Metadata keys the manager sets on the streams it creates. A stream of
// the deterministic name whose MetadataRecord is not the Record's
// namespace/name is not ours: the manager leaves it alone (StreamConflict).
const (
	// MetadataRecord is the Record the stream belongs to, as
	// namespace/name. It, not the UID, makes a stream ours: a Record
	// deleted with deletionPolicy Retain and created again under the same
	// name takes its stream back, values included.
	MetadataRecord = "recbuf.dev/record"
	// MetadataRecordUID is the UID of the Record that last configured the
	// stream, for people reading the stream's configuration.
	MetadataRecordUID = "recbuf.dev/record-uid"
)

// SingleValueMaxMsgs is max_msgs of the stream of a SingleLatest or a
// Mailbox: one value, a new one discarding the old. max_msgs_per_subject
// would not do: a wildcard subject holds one value per matching subject.
const SingleValueMaxMsgs = 1

// Name is the stream of the Record namespace/record: recbuf_NS_RECORD.
// '_' appears in neither a namespace nor a Record name (DNS labels), so
// the name is unambiguous; '.' (not allowed in stream names) does not
// appear in either.
func Name(namespace, record string) string {
	var b strings.Builder
	b.Grow(len(Prefix) + len(namespace) + 1 + len(record))
	b.WriteString(Prefix)
	b.WriteString(namespace)
	b.WriteByte('_')
	b.WriteString(record)
	return b.String()
}

// RecordKey is the value of MetadataRecord for the Record namespace/name.
func RecordKey(namespace, name string) string { return namespace + "/" + name }

// DefaultRingMaxBytes is max_bytes of the stream of a durable SpmcRing
// without a byte budget (spec.buffer.maxBytes), unless the manager is
// told otherwise (--stream-max-bytes). Every stream the manager creates
// has a max_bytes: a standalone nats-server reserves it from its store
// when the stream is created, so a stream that fills up discards its own
// oldest values and never takes another tenant's space; a stream without
// one (-1) reserves nothing and can fill the store for everyone.
const DefaultRingMaxBytes = 8 << 20

// perMessageOverhead is the most a stored message takes beyond its
// headers and payload (which max_msg_size bounds together): its subject,
// no longer than a NATS control line (4096 bytes), and the file store's
// record framing, 34 bytes (the memory store's is 16).
const perMessageOverhead = 4096 + 34

// SingleValueMaxBytes is max_bytes of the stream of a SingleLatest or a
// Mailbox whose largest message is maxMsgSize bytes: room for exactly the
// one value it holds (SingleValueMaxMsgs), so the limit never discards a
// value the buffer would keep.
func SingleValueMaxBytes(maxMsgSize int32) int64 {
	return SingleValueMaxMsgs * (int64(maxMsgSize) + perMessageOverhead)
}
