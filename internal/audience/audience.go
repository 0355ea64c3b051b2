// Package audience computes the audience of the ServiceAccount tokens a
// Record's consumers present: one audience per Record, so that a token
// obtained for one Record is refused by every other. It imports nothing
// but the standard library, so that the API types, the Go client and the
// buffer process all compute it the same way.
package audience

// Prefix starts every Record's audience. Before audiences were per Record,
// it was the one audience of every Record's tokens; it is no longer
// accepted on its own.
const Prefix = "recbuf.dev"

// Of is the audience of the Record namespace/name: recbuf.dev/NAMESPACE/NAME.
// A namespace is a DNS label and a Record's name a DNS subdomain: neither
// holds a '/', so an audience names exactly one Record.
func Of(namespace, name string) string {
	return Prefix + "/" + namespace + "/" + name
}
