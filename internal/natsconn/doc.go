// Package natsconn is how recbuf's processes connect to NATS: one
// connection Policy, and the options of a credentials directory. The
// buffer process (cmd/sidecar) and the manager's status collector
// (cmd/manager) both use them, so they retry, back off, ping and log
// connection changes the same way, and read the same Secret layout.
//
// A Policy retries forever with jittered exponential backoff (defaults
// DefaultReconnectWait and DefaultMaxReconnectWait), pings every
// PingInterval, and logs every connection change to a *slog.Logger with
// URLs redacted (RedactURL); callers add their own reactions as Hooks. The
// manager, which logs with logr, passes slog.New(logr.ToSlogHandler(log)).
// Options a caller needs on top, such as the buffer process's disabled
// reconnect buffer, go in Policy.Connect's extra options.
//
// CredentialOptions turns a NATS credentials directory (a mounted
// Kubernetes Secret) into nats.go connection options. Its files:
//
//	creds      a NATS user credentials file (JWT and NKey seed)
//	token      an authentication token
//	username   a user name; needs password
//	password   that user's password; needs username
//	ca.crt     CA bundle that verifies the server's certificate
//	tls.crt    client certificate for mutual TLS; needs tls.key
//	tls.key    the client certificate's private key; needs tls.crt
//
// Every file is optional. Surrounding whitespace is trimmed from token,
// username and password, since Secrets written by hand often end in a
// newline. Certificate, key and creds files are read by nats.go itself on
// each (re)connection, so a rotated Secret is picked up without a restart.
//
// Concurrency: the package holds no state; its functions are safe for
// concurrent use.
package natsconn
