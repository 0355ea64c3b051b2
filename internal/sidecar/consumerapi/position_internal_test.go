package consumerapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParsePosition(t *testing.T) {
	cases := []struct {
		name        string
		query       string
		lastEventID string
		want        position
		// wantErr is a substring of the error; "" wants none.
		wantErr string
	}{
		{name: "nothing starts after the newest value", want: position{}},
		{name: "from oldest starts at the oldest", query: "from=oldest", want: position{oldest: true}},
		{name: "last N asks for the newest N values", query: "last=5", want: position{last: 5}},
		{name: "last beyond any ring is still a number of values", query: "last=18446744073709551615", want: position{last: 1<<64 - 1}},
		{name: "a Last-Event-ID header wins over last, as a browser reconnecting sends it",
			query: "last=5", lastEventID: "abc-7", want: position{afterSet: true, after: 7, instance: "abc"}},
		{name: "last zero is refused", query: "last=0", wantErr: `last "0" is not a number of values of at least 1`},
		{name: "a negative last is refused", query: "last=-3", wantErr: `last "-3" is not a number of values of at least 1`},
		{name: "a last that is not a number is refused", query: "last=five", wantErr: `last "five" is not a number of values of at least 1`},
		{name: "an empty last is refused", query: "last=", wantErr: `last "" is not a number of values of at least 1`},
		{name: "a last beyond 64 bits is refused", query: "last=18446744073709551616", wantErr: "is not a number of values"},
		{name: "last with after is refused", query: "last=5&after=3", wantErr: "last and after are two starts: ask for one"},
		{name: "last with from oldest is refused", query: "last=5&from=oldest", wantErr: "last and from are two starts: ask for one"},
		{name: "last with from next is refused too", query: "from=next&last=5", wantErr: "last and from are two starts"},
		{name: "an unknown from is refused", query: "from=middle", wantErr: `from "middle" is neither next nor oldest`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/records/ring/events?"+tc.query, nil)
			if tc.lastEventID != "" {
				r.Header.Set("Last-Event-ID", tc.lastEventID)
			}
			got, err := parsePosition(r)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("got %+v, want an error containing %q", got, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("got error %q, want it to contain %q", err, tc.wantErr)
			case tc.wantErr == "" && got != tc.want:
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
