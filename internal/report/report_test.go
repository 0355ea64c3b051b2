package report

import (
	"math"
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
