package wire

// DefaultMaxMessageBytes is the largest payload a buffer process takes in
// when its Record sets no limit: 1 MiB, NATS's own default max_payload, so
// that whatever a default NATS server accepts is buffered too. The buffer
// process's flag and the embedded NATS server's floor are this constant;
// the Record API's default (spec.maxMessageBytes) is its own copy, which
// imports nothing of the module, and a test in controllers checks that the
// two agree.
const DefaultMaxMessageBytes = 1 << 20

// DefaultMaxStreams is the most consumer event streams a buffer process
// serves at once when its Record sets no spec.consumers.maxStreams
// (consumerapi.DefaultMaxStreams says why 256). The manager sizes the
// buffer container's memory from it (internal/sizing), so it lives here,
// below both, rather than in the consumer server the manager does not link.
const DefaultMaxStreams = 256

// DefaultSubject is the NATS subject a Record named name in namespace reads
// when it names none: records.<namespace>.<name>. Edge devices publish to
// it, so the manager (for a Record, whose own copy is Record.DefaultSubject)
// and the standalone buffer process (for --record-name without
// --nats-subject) must agree on it; a test in controllers checks they do.
func DefaultSubject(namespace, name string) string {
	return "records." + namespace + "." + name
}
