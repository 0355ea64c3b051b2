package report

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestCountersAdd(t *testing.T) {
	early := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	late := early.Add(time.Minute)
	tests := []struct {
		name string
		a, b Counters
		want Counters
	}{
		{"counters and gauges add up field by field",
			Counters{Produced: 1, Delivered: 2, Subscribers: 3, LagEvents: 4, LaggedValues: 5, Skipped: 6, Overwrites: 7, Evicted: 9, Dropped: 8},
			Counters{Produced: 10, Delivered: 20, Subscribers: 30, LagEvents: 40, LaggedValues: 50, Skipped: 60, Overwrites: 70, Evicted: 90, Dropped: 80},
			Counters{Produced: 11, Delivered: 22, Subscribers: 33, LagEvents: 44, LaggedValues: 55, Skipped: 66, Overwrites: 77, Evicted: 99, Dropped: 88}},
		{"a sum that fits exactly is kept",
			Counters{Produced: math.MaxUint64 - 1}, Counters{Produced: 1}, Counters{Produced: math.MaxUint64}},
		{"a counter at the top stays there instead of wrapping around",
			Counters{Produced: math.MaxUint64 - 1, Subscribers: math.MaxInt64},
			Counters{Produced: 5, Subscribers: 1},
			Counters{Produced: math.MaxUint64, Subscribers: math.MaxInt64}},
		{"the newer last message time wins whichever side it is on",
			Counters{LastMessageTime: late}, Counters{LastMessageTime: early}, Counters{LastMessageTime: late}},
		{"a zero last message time does not hide the other",
			Counters{}, Counters{LastMessageTime: early}, Counters{LastMessageTime: early}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Add(tt.b); !got.Equal(tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got := tt.b.Add(tt.a); !got.Equal(tt.want) {
				t.Errorf("the other way round: got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCountersEqualIgnoresTheClockReadingAndLocation(t *testing.T) {
	now := time.Now()
	a := Counters{Produced: 1, LastMessageTime: now}
	b := Counters{Produced: 1, LastMessageTime: now.Round(0).In(time.FixedZone("x", 3600))}
	if !a.Equal(b) {
		t.Errorf("got unequal, want equal: %+v vs %+v", a, b)
	}
	if b.Produced = 2; a.Equal(b) {
		t.Error("got equal counters with different counts")
	}
}

func TestASignatureVerifiesOnlyTheSameBytesUnderTheSameKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	data := []byte(`{"namespace":"ns","record":"r","pod":"p"}`)
	sig := Sign(key, data)
	tests := []struct {
		name string
		key  []byte
		data []byte
		sig  string
		want bool
	}{
		{"the signature of the bytes under the key verifies", key, data, sig, true},
		{"other bytes do not verify", key, append([]byte(" "), data...), sig, false},
		{"another key does not verify", []byte("fedcba9876543210fedcba9876543210"), data, sig, false},
		{"no key verifies nothing", nil, data, Sign(nil, data), false},
		{"a signature that is not hex does not verify", key, data, strings.Repeat("zz", 32), false},
		{"a short signature does not verify", key, data, sig[:62], false},
		{"no signature does not verify", key, data, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Verify(tt.key, tt.data, tt.sig); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSettingsReadAndWriteAsPeopleWriteThem(t *testing.T) {
	st := Settings{Interval: Duration(1500 * time.Millisecond), SubjectPrefix: "recbuf.stats"}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"interval":"1.5s","subjectPrefix":"recbuf.stats"}`; string(data) != want {
		t.Errorf("got %s, want %s", data, want)
	}
	var back Settings
	if err := json.Unmarshal(data, &back); err != nil || back != st {
		t.Errorf("got %+v (%v) back, want %+v", back, err, st)
	}
	if err := json.Unmarshal([]byte(`{"interval":"soon"}`), &back); err == nil {
		t.Error("got no error for an interval that is no duration")
	}
}

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name    string
		st      Settings
		wantErr string
	}{
		{"the defaults are valid", Settings{Duration(DefaultInterval), DefaultPrefix}, ""},
		{"a one-token prefix is valid", Settings{Duration(time.Second), "stats"}, ""},
		{"a zero interval is refused", Settings{0, DefaultPrefix}, "positive"},
		{"a negative interval is refused", Settings{Duration(-time.Second), DefaultPrefix}, "positive"},
		{"an empty prefix is refused", Settings{Duration(time.Second), ""}, "empty"},
		{"a wildcard prefix is refused", Settings{Duration(time.Second), "recbuf.*"}, "wildcards"},
		{"a full wildcard prefix is refused", Settings{Duration(time.Second), ">"}, "wildcards"},
		{"an empty token is refused", Settings{Duration(time.Second), "recbuf..stats"}, "tokens"},
		{"white space is refused", Settings{Duration(time.Second), "recbuf stats"}, "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.st.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseSubjectInvertsSubject(t *testing.T) {
	tests := []struct {
		subject      string
		ns, rec, pod string
		ok           bool
	}{
		{Subject("recbuf.stats", "ns", "door", "door-recbuf-1.x"), "ns", "door", "door-recbuf-1_x", true},
		{"recbuf.stats.ns.door", "", "", "", false},
		{"recbuf.stats.ns.door.pod.extra", "", "", "", false},
		{"recbuf.statsx.ns.door.pod", "", "", "", false},
		{"other.ns.door.pod", "", "", "", false},
		{"recbuf.stats..door.pod", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			ns, rec, pod, ok := ParseSubject("recbuf.stats", tt.subject)
			if ns != tt.ns || rec != tt.rec || pod != tt.pod || ok != tt.ok {
				t.Errorf("got %q %q %q %v, want %q %q %q %v", ns, rec, pod, ok, tt.ns, tt.rec, tt.pod, tt.ok)
			}
		})
	}
}

func TestDerivedKeysAreStableAndDistinctPerRecord(t *testing.T) {
	master := []byte("0123456789abcdef0123456789abcdef")
	key := DeriveKey(master, "ns", "telemetry", "uid-1")
	if len(key) != KeySize {
		t.Fatalf("got a key of %d bytes, want %d", len(key), KeySize)
	}
	if again := DeriveKey(append([]byte{}, master...), "ns", "telemetry", "uid-1"); string(again) != string(key) {
		t.Error("got another key for the same master key and Record, want the same")
	}
	// The test vector pins the derivation: the manager and any other
	// implementation of it must agree.
	if got, want := hex.EncodeToString(key), hmacHex(master, "recbuf.dev/report-key/v1\x00ns\x00telemetry\x00uid-1"); got != want {
		t.Errorf("got key %s, want HMAC-SHA256 of the documented message %s", got, want)
	}
	others := map[string][]byte{
		"another UID (a recreated Record)": DeriveKey(master, "ns", "telemetry", "uid-2"),
		"another name":                     DeriveKey(master, "ns", "telemetry2", "uid-1"),
		"another namespace":                DeriveKey(master, "ns2", "telemetry", "uid-1"),
		"names split elsewhere":            DeriveKey(master, "ns\x00telemetry", "", "uid-1"),
		"another master key":               DeriveKey([]byte("fedcba9876543210fedcba9876543210"), "ns", "telemetry", "uid-1"),
	}
	seen := map[string]string{hex.EncodeToString(key): "the Record"}
	for name, k := range others {
		if prev, ok := seen[hex.EncodeToString(k)]; ok {
			t.Errorf("%s got the same key as %s", name, prev)
		}
		seen[hex.EncodeToString(k)] = name
	}
}

func TestMasterKeyFingerprint(t *testing.T) {
	a := MasterKeyFingerprint([]byte("0123456789abcdef0123456789abcdef"))
	if len(a) != 8 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("got fingerprint %q, want 8 hex digits", a)
	}
	sum := sha256.Sum256([]byte("0123456789abcdef0123456789abcdef"))
	if want := hex.EncodeToString(sum[:4]); a != want {
		t.Errorf("got fingerprint %q, want %q (sha256's first 4 bytes)", a, want)
	}
	if b := MasterKeyFingerprint([]byte("fedcba9876543210fedcba9876543210")); a == b {
		t.Errorf("two master keys got the same fingerprint %q", a)
	}
}

func hmacHex(key []byte, msg string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return hex.EncodeToString(mac.Sum(nil))
}

func TestAReportWithoutIntervalLeavesItOut(t *testing.T) {
	data, err := json.Marshal(Report{Namespace: "ns", Record: "r", Pod: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "interval") {
		t.Errorf("got %s, want no interval field", data)
	}
	data, err = json.Marshal(Report{Namespace: "ns", Record: "r", Pod: "p", Interval: Duration(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"interval":"2s"`) {
		t.Errorf("got %s, want \"interval\":\"2s\"", data)
	}
}
