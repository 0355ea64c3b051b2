package report

import (
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
			Counters{Produced: 1, Delivered: 2, Subscribers: 3, LagEvents: 4, LaggedValues: 5, Skipped: 6, Overwrites: 7, Dropped: 8},
			Counters{Produced: 10, Delivered: 20, Subscribers: 30, LagEvents: 40, LaggedValues: 50, Skipped: 60, Overwrites: 70, Dropped: 80},
			Counters{Produced: 11, Delivered: 22, Subscribers: 33, LagEvents: 44, LaggedValues: 55, Skipped: 66, Overwrites: 77, Dropped: 88}},
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
