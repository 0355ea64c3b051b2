package wire_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/recbuf/recbuf/internal/wire"
)

func TestParseEventID(t *testing.T) {
	cases := []struct {
		name         string
		id           string
		wantInstance string
		wantSeq      uint64
		wantErr      bool
	}{
		{name: "an id names its instance and sequence", id: "c9e464bb5516de19-42", wantInstance: "c9e464bb5516de19", wantSeq: 42},
		{name: "a bare number has no instance", id: "42", wantSeq: 42},
		{name: "a bare zero is before the first value", id: "0", wantSeq: 0},
		{name: "the largest sequence number is accepted", id: "i-18446744073709551615", wantInstance: "i", wantSeq: 1<<64 - 1},
		{name: "an instance may itself contain dashes", id: "pod-7-3", wantInstance: "pod-7", wantSeq: 3},
		{name: "an instance of digits is still an instance", id: "12-5", wantInstance: "12", wantSeq: 5},
		{name: "a sequence beyond 64 bits is refused", id: "18446744073709551616", wantErr: true},
		{name: "an empty id is refused", id: "", wantErr: true},
		{name: "a missing sequence is refused", id: "abc-", wantErr: true},
		{name: "a missing instance is refused", id: "-5", wantErr: true},
		{name: "a signed sequence is refused", id: "+5", wantErr: true},
		{name: "a negative bare number is refused", id: "--5", wantErr: true},
		{name: "an instance ending in a dash is refused", id: "a--5", wantErr: true},
		{name: "text is refused", id: "soon", wantErr: true},
		{name: "white space is refused", id: "i-5 ", wantErr: true},
		{name: "an instance with a space is refused", id: "a b-5", wantErr: true},
		{name: "an instance longer than 64 bytes is refused", id: strings.Repeat("a", 65) + "-5", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst, seq, err := wire.ParseEventID(tc.id)
			if tc.wantErr {
				if !errors.Is(err, wire.ErrInvalidEventID) {
					t.Fatalf("ParseEventID(%q): got %q %d %v, want ErrInvalidEventID", tc.id, inst, seq, err)
				}
				return
			}
			if err != nil || inst != tc.wantInstance || seq != tc.wantSeq {
				t.Fatalf("ParseEventID(%q): got %q %d %v, want %q %d", tc.id, inst, seq, err, tc.wantInstance, tc.wantSeq)
			}
			if got := wire.FormatEventID(inst, seq); got != tc.id {
				t.Errorf("FormatEventID(%q, %d): got %q, want %q", inst, seq, got, tc.id)
			}
		})
	}
}

func TestQuoteCutsLongValues(t *testing.T) {
	if got := wire.Quote(strings.Repeat("x", 10000)); len(got) > 80 {
		t.Errorf("got a quote of %d bytes, want at most 80", len(got))
	}
	if got := wire.Quote("a\nb"); got != `"a\nb"` {
		t.Errorf("got %s, want %q quoted", got, "a\nb")
	}
}

// FuzzParseEventID holds ParseEventID to its invariants: it never panics,
// what it accepts formats back to an id that parses to the same position,
// and a formatted id is safe in an SSE "id:" field (one line, no NUL).
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"c9e464bb5516de19-42", "42", "0", "-", "-5", "a-", "a--5", "007", "x-18446744073709551615",
		"18446744073709551616", "a\nb-1", "a\x00-1", " 5", "5 ", "+5", "é-1", strings.Repeat("a", 64) + "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inst, seq, err := wire.ParseEventID(s)
		if err != nil {
			if !errors.Is(err, wire.ErrInvalidEventID) {
				t.Fatalf("ParseEventID(%q): got error %v, want one wrapping ErrInvalidEventID", s, err)
			}
			return
		}
		if inst != "" && !wire.ValidInstance(inst) {
			t.Fatalf("ParseEventID(%q): accepted instance %q that is not valid", s, inst)
		}
		id := wire.FormatEventID(inst, seq)
		if strings.ContainsAny(id, "\r\n\x00") {
			t.Fatalf("FormatEventID(%q, %d) = %q: not one SSE line", inst, seq, id)
		}
		inst2, seq2, err := wire.ParseEventID(id)
		if err != nil || inst2 != inst || seq2 != seq {
			t.Fatalf("ParseEventID(FormatEventID(%q, %d) = %q): got %q %d %v", inst, seq, id, inst2, seq2, err)
		}
	})
}
