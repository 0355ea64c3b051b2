package natsconn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrURLCredentials is wrapped by the error of a server URL that carries
// user information (user:password@ or token@): credentials belong in a
// credentials directory, where they are neither logged nor shown in a
// process's arguments.
var ErrURLCredentials = errors.New("carries credentials (user information before '@')")

// Server is one server of a NATS URL list.
type Server struct {
	// Scheme is nats, tls, ws or wss (nats when the URL names none).
	Scheme string
	// Addr is the lower-case host:port; the port defaults to the scheme's
	// (4222 for nats and tls, 80 for ws, 443 for wss).
	Addr string
}

// Plaintext reports whether the connection to s starts unencrypted, so
// that a server which does not ask for TLS receives any credentials in the
// clear. (A nats:// client upgrades to TLS only when the server asks.)
func (s Server) Plaintext() bool { return s.Scheme == "nats" || s.Scheme == "ws" }

var defaultPorts = map[string]string{"nats": "4222", "tls": "4222", "ws": "80", "wss": "443"}

// ParseServers parses a comma-separated list of NATS URLs, or of bare
// host:port. A URL with user information is an error wrapping
// ErrURLCredentials; errors name the list without it (RedactURL).
func ParseServers(list string) ([]Server, error) {
	var out []Server
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		withScheme := raw
		if !strings.Contains(raw, "://") {
			withScheme = "nats://" + raw
		}
		u, err := url.Parse(withScheme)
		if err != nil {
			// url's error quotes the URL, with any credentials: not it.
			return nil, fmt.Errorf("%s is not a URL", RedactURL(raw))
		}
		if u.User != nil {
			return nil, fmt.Errorf("%s %w", RedactURL(list), ErrURLCredentials)
		}
		port, ok := defaultPorts[u.Scheme]
		if !ok {
			return nil, fmt.Errorf("%s: scheme %q is none of nats, tls, ws and wss", RedactURL(raw), u.Scheme)
		}
		if u.Hostname() == "" {
			return nil, fmt.Errorf("%s names no host", RedactURL(raw))
		}
		if p := u.Port(); p != "" {
			port = p
		}
		out = append(out, Server{Scheme: u.Scheme, Addr: net.JoinHostPort(strings.ToLower(u.Hostname()), port)})
	}
	if len(out) == 0 {
		return nil, errors.New("no server")
	}
	return out, nil
}
