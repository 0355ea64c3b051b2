package natsconn

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseServers(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		want    []Server
		wantErr error
	}{
		{"URLs with and without ports", "nats://NATS:4222, tls://b, ws://c, wss://d:8443",
			[]Server{{"nats", "nats:4222"}, {"tls", "b:4222"}, {"ws", "c:80"}, {"wss", "d:8443"}}, nil},
		{"a bare host:port is nats", "nats.nats.svc:4333", []Server{{"nats", "nats.nats.svc:4333"}}, nil},
		{"a password is refused", "nats://a:4222,nats://u:s3cret@b:4222", nil, ErrURLCredentials},
		{"a token is refused", "t0ken@b:4222", nil, ErrURLCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseServers(tt.list)
			if !errors.Is(err, tt.wantErr) || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "t0ken")) {
				t.Errorf("got error %q, which quotes the credentials", err)
			}
		})
	}
	for _, bad := range []string{"", "http://x", "nats://"} {
		if _, err := ParseServers(bad); err == nil {
			t.Errorf("ParseServers(%q): got no error, want one", bad)
		}
	}
	if (Server{Scheme: "nats"}).Plaintext() != true || (Server{Scheme: "tls"}).Plaintext() != false {
		t.Error("got nats:// encrypted or tls:// plaintext")
	}
}

func TestQualifiedNamesTheServerAPodOfTheNamespaceReaches(t *testing.T) {
	tests := []struct {
		name      string
		addr      string
		namespace string
		want      string
	}{
		{"a Service name alone is the Service of the pod's namespace", "nats:4222", "team-a", "nats.team-a.svc:4222"},
		{"the same name in another namespace is another server", "nats:4222", "recbuf-system", "nats.recbuf-system.svc:4222"},
		{"a Service and namespace are that namespace's Service", "nats.nats:4222", "team-a", "nats.nats.svc:4222"},
		{"a name ending in svc stays as it is", "nats.nats.svc:4222", "team-a", "nats.nats.svc:4222"},
		{"the cluster domain is dropped", "nats.nats.svc.cluster.local:4222", "team-a", "nats.nats.svc:4222"},
		{"a trailing dot is dropped", "nats.nats.svc.cluster.local.:4222", "team-a", "nats.nats.svc:4222"},
		{"a name outside the cluster stays as it is", "nats.attacker.example:4222", "team-a", "nats.attacker.example:4222"},
		{"an IP address stays as it is", "127.0.0.1:4222", "team-a", "127.0.0.1:4222"},
		{"localhost stays as it is", "localhost:4222", "team-a", "localhost:4222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Server{Scheme: "tls", Addr: tt.addr}.Qualified(tt.namespace)
			if got.Addr != tt.want || got.Scheme != "tls" {
				t.Errorf("got %v, want tls %s", got, tt.want)
			}
		})
	}
}

func TestRelativeHostsAreFound(t *testing.T) {
	tests := []struct {
		name string
		list string
		want string
	}{
		{"a Service name alone is relative", "nats://nats:4222", "nats:4222"},
		{"one relative server in a list is found", "tls://nats.nats.svc:4222,nats://nats", "nats:4222"},
		{"a Service and namespace are not relative", "nats://nats.nats:4222", ""},
		{"IP addresses and localhost are not relative", "nats://127.0.0.1:4222,nats://localhost:4222,nats://[::1]:4222", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers, err := ParseServers(tt.list)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if s, ok := FirstRelative(servers); ok {
				got = s.Addr
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
