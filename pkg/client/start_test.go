package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/recbuf/recbuf/pkg/client"
)

func TestParseStart(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    client.Start
		wantErr string
	}{
		{name: "next is the default start", in: "next", want: client.StartNext},
		{name: "oldest starts at the oldest value held", in: "oldest", want: client.StartOldest},
		{name: "last=N starts with the newest N", in: "last=5", want: client.StartLast(5)},
		{name: "last=N takes the largest count there is", in: "last=18446744073709551615", want: client.StartLast(1<<64 - 1)},
		{name: "last=0 is refused with a reason", in: "last=0", wantErr: `"last=0": N must be a positive integer`},
		{name: "a last that is not a number is refused with a reason", in: "last=x", wantErr: `"last=x": N must be a positive integer`},
		{name: "a negative last is refused with a reason", in: "last=-1", wantErr: `"last=-1": N must be a positive integer`},
		{name: "a signed last is refused", in: "last=+3", wantErr: `"last=+3": N must be a positive integer`},
		{name: "a last without N is refused", in: "last=", wantErr: `"last=": N must be a positive integer`},
		{name: "a last beyond 64 bits is refused", in: "last=18446744073709551616", wantErr: "N must be a positive integer"},
		{name: "a bare last is refused with the grammar", in: "last", wantErr: `"last": want next, oldest or last=N`},
		{name: "an unknown start is refused with the grammar", in: "middle", wantErr: `"middle": want next, oldest or last=N`},
		{name: "the empty start is refused", in: "", wantErr: `"": want next, oldest or last=N`},
		{name: "starts are lower case", in: "Oldest", wantErr: `"Oldest": want next, oldest or last=N`},
		{name: "spaces are not trimmed", in: " next", wantErr: `" next": want`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.ParseStart(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseStart(%q): got %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseStart(%q): got %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestStartStringRoundTrips(t *testing.T) {
	tests := []struct {
		name  string
		start client.Start
		want  string
	}{
		{name: "the zero start is next", start: client.Start{}, want: "next"},
		{name: "oldest", start: client.StartOldest, want: "oldest"},
		{name: "last=N", start: client.StartLast(42), want: "last=42"},
		{name: "last of zero is next", start: client.StartLast(0), want: "next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.start.String(); got != tt.want {
				t.Errorf("String: got %q, want %q", got, tt.want)
			}
			back, err := client.ParseStart(tt.start.String())
			if err != nil || back != tt.start {
				t.Errorf("ParseStart(%q): got %v, %v; want %v", tt.start.String(), back, err, tt.start)
			}
		})
	}
}

// TestStreamAsksForItsStart checks the query each way of giving a start
// sends: the old options are the same as From with their Start, and the
// last start given wins.
func TestStreamAsksForItsStart(t *testing.T) {
	tests := []struct {
		name string
		opts []client.StreamOption
		want string
	}{
		{name: "no option starts at the next value", want: ""},
		{name: "from next asks for nothing", opts: []client.StreamOption{client.From(client.StartNext)}, want: ""},
		{name: "from oldest asks from the oldest", opts: []client.StreamOption{client.From(client.StartOldest)}, want: "from=oldest"},
		{name: "FromOldest is from oldest", opts: []client.StreamOption{client.FromOldest()}, want: "from=oldest"},
		{name: "from last=N asks for the newest N", opts: []client.StreamOption{client.From(client.StartLast(7))}, want: "last=7"},
		{name: "Last(n) is from last=N", opts: []client.StreamOption{client.Last(7)}, want: "last=7"},
		{name: "Last(0) is the default start", opts: []client.StreamOption{client.Last(0)}, want: ""},
		{name: "the last start given wins", opts: []client.StreamOption{client.Last(3), client.FromOldest()}, want: "from=oldest"},
		{name: "a start parsed from a command line", opts: []client.StreamOption{client.From(mustParseStart(t, "last=2"))}, want: "last=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queries := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				queries <- r.URL.RawQuery
				// A 4xx ends the stream for good: one request per case.
				http.Error(w, "enough", http.StatusConflict)
			}))
			defer srv.Close()
			err := newClient(t, srv.URL+"/v1/records/r").Stream(context.Background(),
				client.HandlerFunc(func(context.Context, client.Value) error { return nil }), tt.opts...)
			var se *client.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Stream: got %v, want a *StatusError", err)
			}
			if got := <-queries; got != tt.want {
				t.Errorf("query: got %q, want %q", got, tt.want)
			}
		})
	}
}

func mustParseStart(t *testing.T, s string) client.Start {
	t.Helper()
	st, err := client.ParseStart(s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
