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

// Qualified returns s with its host in the form a pod of namespace
// resolves it to, so that two names of one server compare equal and one
// name of two servers does not. Kubernetes resolves a bare Service name
// in the pod's own namespace: nats:4222 is nats.<namespace>.svc:4222, a
// different server in every namespace. "svc.namespace" is that
// namespace's Service, and the cluster domain (.cluster.local) and a
// trailing dot change nothing. IP addresses, localhost and names of three
// labels or more that do not end in .svc stay as they are.
func (s Server) Qualified(namespace string) Server {
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil || net.ParseIP(host) != nil || host == "localhost" {
		return s
	}
	host = strings.TrimSuffix(host, ".")
	if h, ok := strings.CutSuffix(host, ".svc.cluster.local"); ok {
		host = h + ".svc"
	}
	switch strings.Count(host, ".") {
	case 0:
		if namespace != "" {
			host += "." + namespace + ".svc"
		}
	case 1:
		host += ".svc"
	}
	s.Addr = net.JoinHostPort(host, port)
	return s
}

// FirstRelative returns the first of servers whose host is a bare name
// (no dot, neither an IP address nor localhost), which each pod resolves
// in its own namespace, so that it names a different server in every
// namespace.
func FirstRelative(servers []Server) (Server, bool) {
	for _, s := range servers {
		host, _, err := net.SplitHostPort(s.Addr)
		if err == nil && !strings.Contains(host, ".") && net.ParseIP(host) == nil && host != "localhost" {
			return s, true
		}
	}
	return Server{}, false
}
