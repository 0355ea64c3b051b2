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
