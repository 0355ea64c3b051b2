package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/wire"
	"github.com/recbuf/recbuf/pkg/client"
)

// tokenAuthorizer lets in the bearers of one token, which a test changes
// as a kubelet would rotate it.
type tokenAuthorizer struct{ valid atomic.Value }

func (a *tokenAuthorizer) Authorize(_ context.Context, token, _ string, _ consumerapi.Operation) error {
	if token == "" || token != a.valid.Load().(string) {
		return fmt.Errorf("%w: not the token", consumerapi.ErrUnauthenticated)
	}
	return nil
}

// tokenServer serves the ring record r, holding one value, to the
// bearers of authz's token, "token-1" until the test changes it.
func tokenServer(t *testing.T) (*httptest.Server, *tokenAuthorizer) {
	t.Helper()
	buf, err := buffer.New[wire.Message](buffer.TypeSpmcRing, 8)
	if err != nil {
		t.Fatal(err)
	}
	authz := &tokenAuthorizer{}
	authz.valid.Store("token-1")
	api, err := consumerapi.New(consumerapi.Config{Retry: time.Millisecond, Authorizer: authz, Logger: slog.New(slog.DiscardHandler)},
		consumerapi.Record{Name: "r", Buffer: buf})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() { buf.Close(); srv.Close() })
	pushN(t, buf, 1)
	return srv, authz
}

func TestABearerTokenFileIsReadAgainForEachRequest(t *testing.T) {
	srv, authz := tokenServer(t)

	file := filepath.Join(t.TempDir(), "token")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("token-1\n")
	ctx := context.Background()
	c, err := client.New(srv.URL+"/v1/records/r", client.WithBearerTokenFile(file))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Latest(ctx); err != nil {
		t.Fatalf("with the token (and a trailing newline): %v", err)
	}

	authz.valid.Store("token-2")
	var se *client.StatusError
	if _, err := c.Latest(ctx); !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || se.Message == "" {
		t.Fatalf("with a token no longer valid: got %v, want a 401 StatusError with the server's reason", err)
	}
	write("token-2")
	if _, err := c.Latest(ctx); err != nil {
		t.Fatalf("after the file was rotated: %v", err)
	}
	streamCtx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	got := make(chan client.Value, 1)
	go func() {
		_ = c.Stream(streamCtx, client.HandlerFunc(func(_ context.Context, v client.Value) error {
			select {
			case got <- v:
			default:
			}
			return nil
		}), client.FromOldest())
	}()
	// The stream is cancelled only once the value is here: a handler that
	// cancelled it itself would make both cases below ready at once, and
	// select picks either.
	select {
	case <-got:
		cancel()
	case <-streamCtx.Done():
		t.Fatal("a stream with the token got no value")
	}

	write("  \n")
	if _, err := c.Latest(ctx); !errors.Is(err, client.ErrNoToken) {
		t.Fatalf("with an empty token file: got %v, want ErrNoToken", err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Latest(ctx); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("without the token file: got %v, want os.ErrNotExist", err)
	}
	noToken, err := client.New(srv.URL + "/v1/records/r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noToken.Latest(ctx); !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a client without a token: got %v, want 401", err)
	}
}

func TestAudienceIsTheRecordsOwn(t *testing.T) {
	if got, want := client.Audience("sensors", "telemetry"), "recbuf.dev/sensors/telemetry"; got != want {
		t.Errorf("Audience = %q, want %q", got, want)
	}
	tests := []struct {
		url, want, wantErr string
	}{
		{url: "http://telemetry-recbuf.sensors.svc:8080/v1/records/telemetry", want: "recbuf.dev/sensors/telemetry"},
		{url: "http://telemetry-recbuf.sensors.svc.cluster.local:8080/v1/records/telemetry/", want: "recbuf.dev/sensors/telemetry"},
		{url: "https://cmd-recbuf.plant-1.svc/v1/records/cmd", want: "recbuf.dev/plant-1/cmd"},
		{url: "http://telemetry-recbuf:8080/v1/records/telemetry", wantErr: "the Record's namespace is unknown"},
		{url: "http://127.0.0.1:8080/v1/records/telemetry", wantErr: "the Record's namespace is unknown"},
		{url: "http://telemetry-recbuf.sensors.svc:8080/v1/records", wantErr: "want a path /v1/records/NAME"},
		{url: "http://telemetry-recbuf.sensors.svc:8080/v1/records/a/latest", wantErr: "want a path /v1/records/NAME"},
	}
	for _, tt := range tests {
		got, err := client.AudienceForURL(tt.url)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("AudienceForURL(%q) = %q, %v; want an error with %q", tt.url, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("AudienceForURL(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
}

func TestABearerTokenFuncIsAskedForEachRequest(t *testing.T) {
	srv, authz := tokenServer(t)

	var current atomic.Value
	current.Store("token-1")
	var calls atomic.Int32
	failing := errors.New("token request refused")
	c, err := client.New(srv.URL+"/v1/records/r", client.WithBearerTokenFunc(func(context.Context) (string, error) {
		calls.Add(1)
		if current.Load().(string) == "fail" {
			return "", failing
		}
		return current.Load().(string), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Latest(ctx); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	authz.valid.Store("token-2")
	current.Store("token-2")
	if _, err := c.Latest(ctx); err != nil {
		t.Fatalf("with the renewed token: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("two requests asked for %d tokens, want 2", n)
	}
	current.Store("")
	if _, err := c.Latest(ctx); !errors.Is(err, client.ErrNoToken) {
		t.Errorf("with an empty token: got %v, want ErrNoToken", err)
	}
	current.Store("fail")
	if _, err := c.Latest(ctx); !errors.Is(err, failing) {
		t.Errorf("when the function fails: got %v, want its error", err)
	}
}
