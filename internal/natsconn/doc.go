// Package natsconn turns a NATS credentials directory (a mounted
// Kubernetes Secret) into nats.go connection options. The buffer process
// (cmd/sidecar) and the manager (cmd/manager) read the same file names, so
// one Secret layout serves both:
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
