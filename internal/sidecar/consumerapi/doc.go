// Package consumerapi serves a buffer process's records to consumers over
// HTTP: a Server-Sent Events stream per record, the latest value, and take
// for Mailbox records. docs/consumer-api.md is the user-facing contract;
// the encoding lives in package wire.
//
// Every request works on its own buffer reader, so consumers never
// interfere with each other or with intake except as the record's buffer
// type says (Mailbox readers compete for values). A stream that cannot keep
// up falls behind in the buffer, not in the producer: on a ring it is told
// how many values it missed in a lag event.
//
// With Config.Authorizer, each request for a record is authorized before
// the record is even looked up: 401 with WWW-Authenticate: Bearer, 403, or
// 503 with Retry-After when the authorizer cannot decide, each with the
// API's JSON error body.
//
// With Config.AllowedOrigins, pages of those origins may read the records
// from a browser (CORS): their requests get Access-Control-Allow-Origin and
// the headers clients read exposed, and their preflights are answered
// before authorization (a preflight carries no credentials). Other origins
// get no CORS header, and their preflights 403.
//
// A Server is safe for concurrent use. Streams end when the record's buffer
// is closed (after sending what the buffer still lets them read), when the
// client goes away, or when a write makes no progress for WriteTimeout,
// which bounds the writes of every other answer too. A large value is
// written in pieces, never copied whole into a per-request buffer.
package consumerapi
