package main

import (
	"testing"

	"github.com/recbuf/recbuf/pkg/client"
)

// step is one stream event fed to an orderCheck: a value, a lag or a restart.
type step struct {
	seq       uint64
	device    string
	deviceSeq uint64
	lag       uint64
	restart   bool
}

func val(seq uint64) step                        { return step{seq: seq} }
func dev(seq uint64, d string, dseq uint64) step { return step{seq: seq, device: d, deviceSeq: dseq} }
func lag(missed uint64) step                     { return step{lag: missed} }
func restart() step                              { return step{restart: true} }

func TestOrderCheck(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  streamSummary
	}{
		{
			name:  "consecutive values are in order",
			steps: []step{val(5), val(6), val(7)},
			want:  streamSummary{Values: 3, FirstSeq: 5, LastSeq: 7},
		},
		{
			name:  "a gap announced by a lag of its exact size is in order",
			steps: []step{val(1), lag(10), val(12), val(13)},
			want:  streamSummary{Values: 3, FirstSeq: 1, LastSeq: 13, LagEvents: 1, Missed: 10},
		},
		{
			name:  "a gap larger than the lag announced is counted as unannounced",
			steps: []step{val(1), lag(3), val(9)},
			want:  streamSummary{Values: 2, FirstSeq: 1, LastSeq: 9, LagEvents: 1, Missed: 3, Unannounced: 1},
		},
		{
			name:  "a gap without a lag is counted as unannounced",
			steps: []step{val(1), val(3)},
			want:  streamSummary{Values: 2, FirstSeq: 1, LastSeq: 3, Unannounced: 1},
		},
		{
			name:  "a repeated sequence number is out of order",
			steps: []step{val(4), val(4)},
			want:  streamSummary{Values: 2, FirstSeq: 4, LastSeq: 4, OutOfOrder: 1},
		},
		{
			name:  "a device whose sequence goes back is counted apart from the stream's order",
			steps: []step{dev(1, "dev-001", 7), dev(2, "dev-002", 1), dev(3, "dev-001", 7)},
			want:  streamSummary{Values: 3, FirstSeq: 1, LastSeq: 3, DeviceOutOfOrder: 1},
		},
		{
			name:  "a restart on another buffer process may number afresh",
			steps: []step{val(100), restart(), val(1), val(2)},
			want:  streamSummary{Values: 3, FirstSeq: 100, LastSeq: 2, Resets: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got streamSummary
			c := newOrderCheck(&got)
			for _, s := range tt.steps {
				switch {
				case s.restart:
					c.restart()
				case s.lag > 0:
					c.lag(s.lag)
				default:
					c.value(client.Value{Seq: s.seq, Device: s.device, DeviceSeq: s.deviceSeq})
				}
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if wantOrdered := tt.want.OutOfOrder == 0 && tt.want.DeviceOutOfOrder == 0 && tt.want.Unannounced == 0; got.ordered() != wantOrdered {
				t.Errorf("ordered: got %v, want %v", got.ordered(), wantOrdered)
			}
		})
	}
}
