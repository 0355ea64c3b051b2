package wire

// DefaultMaxMessageBytes is the largest payload a buffer process takes in
// when its Record sets no limit: 1 MiB, NATS's own default max_payload, so
// that whatever a default NATS server accepts is buffered too. The Record
// API's default (spec.maxMessageBytes), the buffer process's flag and the
// embedded NATS server's floor are all this constant.
const DefaultMaxMessageBytes = 1 << 20

// DefaultSubject is the NATS subject a Record named name in namespace reads
// when it names none: records.<namespace>.<name>. Edge devices publish to
// it, so the manager (for a Record) and the standalone buffer process (for
// --record-name without --nats-subject) must agree on it.
func DefaultSubject(namespace, name string) string {
	return "records." + namespace + "." + name
}
