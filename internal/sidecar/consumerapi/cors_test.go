package consumerapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
)

const (
	dash  = "https://dash.example.com"
	local = "http://localhost:8080"
)

// request sends method path with the headers hdr (name, value, ...) and
// returns the status, the body and the header of the answer.
func (f *fixture) request(t *testing.T, method, path string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// corsHeaders are the CORS response headers, those a test checks are set
// or absent.
var corsHeaders = []string{
	"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
	"Access-Control-Max-Age", "Access-Control-Expose-Headers",
}

func TestCORS(t *testing.T) {
	preflight := func(origin, method, headers string) []string {
		h := []string{"Origin", origin, "Access-Control-Request-Method", method}
		if headers != "" {
			h = append(h, "Access-Control-Request-Headers", headers)
		}
		return h
	}
	cases := []struct {
		name    string
		origins []string
		method  string
		path    string
		hdr     []string
		status  int
		// want are the CORS headers expected, with their values; every
		// other one of corsHeaders must be absent.
		want map[string]string
		// vary says whether Vary must name Origin.
		vary bool
	}{
		{
			name: "a GET from an allowed origin names that origin and exposes the headers clients read", origins: []string{dash, local},
			method: http.MethodGet, path: "/v1/records/latest/latest", hdr: []string{"Origin", local}, status: http.StatusOK,
			want: map[string]string{
				"Access-Control-Allow-Origin":   local,
				"Access-Control-Expose-Headers": "Recbuf-Instance, Recbuf-Buffer-Type, Recbuf-Seq, Recbuf-Time, Recbuf-Device, Recbuf-Device-Seq, Retry-After, WWW-Authenticate",
			},
			vary: true,
		},
		{
			name: "a GET from an origin not listed is served without any CORS header", origins: []string{dash, local},
			method: http.MethodGet, path: "/v1/records/latest/latest", hdr: []string{"Origin", "https://evil.example.com"}, status: http.StatusOK,
			vary: true,
		},
		{
			name: "an origin that differs from a listed one only by its port is not listed", origins: []string{local},
			method: http.MethodGet, path: "/v1/records/latest", hdr: []string{"Origin", "http://localhost:8081"}, status: http.StatusOK,
			vary: true,
		},
		{
			name: "a GET from a sandboxed page, Origin null, is not allowed by a list", origins: []string{dash, local},
			method: http.MethodGet, path: "/v1/records/latest/latest", hdr: []string{"Origin", "null"}, status: http.StatusOK,
			vary: true,
		},
		{
			name: "a GET from a sandboxed page, Origin null, is allowed by *", origins: []string{"*"},
			method: http.MethodGet, path: "/v1/records/latest/latest", hdr: []string{"Origin", "null"}, status: http.StatusOK,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "*any*"}, vary: true,
		},
		{
			name: "a GET without Origin gets Vary: Origin and no CORS header", origins: []string{dash},
			method: http.MethodGet, path: "/v1/records", status: http.StatusOK, vary: true,
		},
		{
			name: "the record list is a record path too", origins: []string{dash},
			method: http.MethodGet, path: "/v1/records", hdr: []string{"Origin", dash}, status: http.StatusOK,
			want: map[string]string{"Access-Control-Allow-Origin": dash, "Access-Control-Expose-Headers": "*any*"}, vary: true,
		},
		{
			name: "a GET from any origin gets * when every origin is allowed", origins: []string{"*"},
			method: http.MethodGet, path: "/v1/records/latest/latest", hdr: []string{"Origin", "https://anyone.example.org"}, status: http.StatusOK,
			want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "*any*"}, vary: true,
		},
		{
			name: "a preflight of take's POST from an allowed origin is answered 204 with the methods, headers and max age", origins: []string{dash},
			method: http.MethodOptions, path: "/v1/records/mailbox/take", hdr: preflight(dash, "POST", ""), status: http.StatusNoContent,
			want: preflightAnswer(dash), vary: true,
		},
		{
			name: "a preflight of a stream that sends Authorization and Last-Event-ID is answered 204", origins: []string{dash},
			method: http.MethodOptions, path: "/v1/records/ring/events", hdr: preflight(dash, "GET", "authorization,last-event-id"), status: http.StatusNoContent,
			want: preflightAnswer(dash), vary: true,
		},
		{
			name: "a preflight for a record that does not exist is answered as for one that does", origins: []string{dash},
			method: http.MethodOptions, path: "/v1/records/nope/events", hdr: preflight(dash, "GET", ""), status: http.StatusNoContent,
			want: preflightAnswer(dash), vary: true,
		},
		{
			name: "a preflight from an origin not listed gets 403 and no CORS header", origins: []string{dash},
			method: http.MethodOptions, path: "/v1/records/mailbox/take", hdr: preflight("https://evil.example.com", "POST", ""), status: http.StatusForbidden,
			vary: true,
		},
		{
			name: "an OPTIONS that is not a preflight is not a method of the API", origins: []string{dash},
			method: http.MethodOptions, path: "/v1/records/ring", hdr: []string{"Origin", dash}, status: http.StatusMethodNotAllowed,
			want: map[string]string{"Access-Control-Allow-Origin": dash, "Access-Control-Expose-Headers": "*any*"}, vary: true,
		},
		{
			name: "a path outside the records gets nothing CORS-related", origins: []string{dash},
			method: http.MethodGet, path: "/v2/other", hdr: []string{"Origin", dash}, status: http.StatusNotFound,
		},
		{
			name:   "without allowed origins a preflight is refused as before, without any CORS header",
			method: http.MethodOptions, path: "/v1/records/mailbox/take", hdr: preflight(dash, "POST", ""), status: http.StatusMethodNotAllowed,
		},
		{
			name:   "without allowed origins a GET from another origin gets no CORS header and no Vary",
			method: http.MethodGet, path: "/v1/records/latest/latest", hdr: []string{"Origin", dash}, status: http.StatusOK,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consumerapi.Config{AllowedOrigins: tc.origins})
			push(t, f.latest, 1)
			status, body, hdr := f.request(t, tc.method, tc.path, tc.hdr...)
			if status != tc.status {
				t.Errorf("got status %d (%s), want %d", status, body, tc.status)
			}
			for _, name := range corsHeaders {
				got, want := hdr.Get(name), tc.want[name]
				switch {
				case want == "*any*" && got == "":
					t.Errorf("got no %s, want one", name)
				case want != "*any*" && got != want:
					t.Errorf("got %s %q, want %q", name, got, want)
				}
			}
			if got := varies(hdr); got != tc.vary {
				t.Errorf("got Vary %q, want Origin named: %v", hdr.Values("Vary"), tc.vary)
			}
		})
	}
}

// varies reports whether the Vary header names Origin.
func varies(hdr http.Header) bool {
	for _, v := range hdr.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Origin") {
				return true
			}
		}
	}
	return false
}

func TestAStreamFromAnAllowedOriginCarriesTheCORSHeaders(t *testing.T) {
	f := newFixture(t, consumerapi.Config{AllowedOrigins: []string{dash}})
	push(t, f.ring, 2)
	s := f.open(t, "/v1/records/ring/events?from=oldest", "Origin", dash)
	if got := s.resp.Header.Get("Access-Control-Allow-Origin"); got != dash {
		t.Errorf("got Access-Control-Allow-Origin %q, want %q", got, dash)
	}
	if !varies(s.resp.Header) {
		t.Errorf("got Vary %q, want Origin named", s.resp.Header.Values("Vary"))
	}
	s.expect("1:v1", "2:v2")
}

// tokenAuthorizer lets in the requests that carry its token, and refuses
// the others as unauthenticated.
type tokenAuthorizer string

func (a tokenAuthorizer) Authorize(_ context.Context, token, _ string, _ consumerapi.Operation) error {
	if token != string(a) {
		return fmt.Errorf("%w: no valid token", consumerapi.ErrUnauthenticated)
	}
	return nil
}

func TestCORSKeepsAuthenticationAsItIs(t *testing.T) {
	cases := []struct {
		name   string
		method string
		hdr    []string
		status int
		allow  string
	}{
		{
			name: "a preflight, which carries no credentials, is answered without a token", method: http.MethodOptions,
			hdr: []string{"Origin", dash, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization"}, status: http.StatusNoContent, allow: dash,
		},
		{
			name: "a preflight from an origin not listed is refused without asking for a token", method: http.MethodOptions,
			hdr: []string{"Origin", local, "Access-Control-Request-Method", "POST"}, status: http.StatusForbidden,
		},
		{
			name: "a take without a token is refused, and the page may read that answer", method: http.MethodPost,
			hdr: []string{"Origin", dash}, status: http.StatusUnauthorized, allow: dash,
		},
		{
			name: "a take with the token is served", method: http.MethodPost,
			hdr: []string{"Origin", dash, "Authorization", "Bearer sesame"}, status: http.StatusOK, allow: dash,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consumerapi.Config{AllowedOrigins: []string{dash}, Authorizer: tokenAuthorizer("sesame")})
			push(t, f.mailbox, 1)
			status, body, hdr := f.request(t, tc.method, "/v1/records/mailbox/take?timeout=0", tc.hdr...)
			if status != tc.status {
				t.Errorf("got status %d (%s), want %d", status, body, tc.status)
			}
			if got := hdr.Get("Access-Control-Allow-Origin"); got != tc.allow {
				t.Errorf("got Access-Control-Allow-Origin %q, want %q", got, tc.allow)
			}
			if _, pending := f.mailbox.Peek(); pending != (tc.status != http.StatusOK) {
				t.Errorf("got value pending %v after a %d, want it taken only by the take served", pending, status)
			}
		})
	}
}

func TestParseAllowedOrigins(t *testing.T) {
	cases := []struct {
		name     string
		origins  []string
		withAuth bool
		want     []string
		bad      string // a part of the error, "" for none
	}{
		{name: "an https origin and an http one with a port are allowed", origins: []string{dash, local}, want: []string{dash, local}},
		{name: "an IPv4 address and a bracketed IPv6 one are hosts", origins: []string{"http://127.0.0.1:3000", "http://[::1]:8080"}, want: []string{"http://127.0.0.1:3000", "http://[::1]:8080"}},
		{name: "a repeated origin is kept once", origins: []string{dash, dash}, want: []string{dash}},
		{name: "no origin is no CORS", origins: nil, want: nil},
		{name: "* alone is allowed without authentication", origins: []string{"*"}, want: []string{"*"}},
		{name: "* is refused with authentication", origins: []string{"*"}, withAuth: true, bad: "only for consumers without authentication"},
		{name: "exact origins are allowed with authentication", origins: []string{dash}, withAuth: true, want: []string{dash}},
		{name: "* beside another origin is refused", origins: []string{"*", dash}, bad: "must be the only entry"},
		{name: "an origin with a path is refused", origins: []string{"https://dash.example.com/app"}, bad: "is not scheme://host[:port]"},
		{name: "an origin with a trailing slash is refused", origins: []string{"https://dash.example.com/"}, bad: "is not scheme://host[:port]"},
		{name: "a wildcard in the host is refused", origins: []string{"https://*.example.com"}, bad: "is not scheme://host[:port]"},
		{name: "a scheme other than http and https is refused", origins: []string{"ftp://dash.example.com"}, bad: "is not scheme://host[:port]"},
		{name: "an origin without a scheme is refused", origins: []string{"dash.example.com"}, bad: "is not scheme://host[:port]"},
		{name: "an uppercase host, which a browser never sends, is refused", origins: []string{"https://Dash.example.com"}, bad: "lowercase host"},
		{name: "an origin with a user is refused", origins: []string{"https://me@dash.example.com"}, bad: "is not scheme://host[:port]"},
		{name: "an origin with a query is refused", origins: []string{"https://dash.example.com?x=1"}, bad: "is not scheme://host[:port]"},
		{name: "an empty origin is refused", origins: []string{""}, bad: "is not scheme://host[:port]"},
		{name: "the opaque origin null is refused: every sandboxed page sends it", origins: []string{"null"}, bad: "is not scheme://host[:port]"},
		{name: "a port beyond 65535 is refused", origins: []string{"http://localhost:65536"}, bad: "port outside 1-65535"},
		{name: "port 0 is refused", origins: []string{"http://localhost:0"}, bad: "port outside 1-65535"},
		{name: "a port with a leading zero, which a browser never sends, is refused", origins: []string{"http://localhost:08080"}, bad: "leading zero"},
		{name: "https's own port is refused, since a browser leaves it out", origins: []string{"https://dash.example.com:443"}, bad: "default port"},
		{name: "http's own port is refused, since a browser leaves it out", origins: []string{"http://dash.example.com:80"}, bad: "default port"},
		{name: "an overlong origin is refused", origins: []string{"https://" + strings.Repeat("a", 300) + ".com"}, bad: "longer than 280"},
		{name: "more than 32 origins are refused", origins: manyOrigins(33), bad: "33 origins, at most 32"},
		{name: "32 origins are allowed", origins: manyOrigins(32), want: manyOrigins(32)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := consumerapi.ParseAllowedOrigins(tc.origins, tc.withAuth)
			if tc.bad != "" {
				if !errors.Is(err, consumerapi.ErrInvalidOrigin) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("got error %v, want ErrInvalidOrigin saying %q", err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func manyOrigins(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("http://localhost:%d", 3000+i)
	}
	return out
}

func TestAServerWithAnAuthorizerRefusesToAllowEveryOrigin(t *testing.T) {
	_, err := consumerapi.New(consumerapi.Config{AllowedOrigins: []string{"*"}, Authorizer: tokenAuthorizer("x")})
	if !errors.Is(err, consumerapi.ErrInvalidOrigin) {
		t.Errorf("got %v, want ErrInvalidOrigin", err)
	}
}

// preflightAnswer is the CORS headers of a preflight answered for origin.
func preflightAnswer(origin string) map[string]string {
	return map[string]string{
		"Access-Control-Allow-Origin":  origin,
		"Access-Control-Allow-Methods": "GET, POST",
		"Access-Control-Allow-Headers": "Authorization, Last-Event-ID, Content-Type",
		"Access-Control-Max-Age":       "600",
	}
}
