package sizing

import (
	"errors"
	"strings"
	"testing"
)

// The fixed part for maxMessageBytes of 1 MiB: the process, and the intake
// queue of 32 MiB of payloads and 32768 messages of 256 bytes (8 MiB).
const (
	process      = 32 * MiB
	queue1MiB    = 40 * MiB
	fixedWithout = process + queue1MiB // besides the ring's slots
)

func TestSize(t *testing.T) {
	tests := []struct {
		name string
		in   Declared
		want Plan
		// wantErr, when set, is a part of the error's message; the error
		// must then be a *DoesNotFitError.
		wantErr string
	}{
		{
			name: "a single-slot buffer holds one message: its limit is the process, the queue and one message, with headroom",
			in:   Declared{MaxMessageBytes: MiB},
			// need 73 MiB; 73 × 5/4 = 91.25, rounded up to 92 MiB; the
			// request leaves the queue out: 33 × 5/4 = 41.25, 42 MiB
			want: Plan{Values: MiB, Pending: queue1MiB, Process: process, Limit: 92 * MiB, Request: 42 * MiB, Default: true},
		},
		{
			name: "a buffer serving more streams than the default gets memory for each one beyond it",
			in:   Declared{MaxMessageBytes: MiB, MaxStreams: 256 + 1024},
			// the process part grows by 1024 × 32 KiB = 32 MiB: need 105 MiB,
			// × 5/4 = 131.25, 132 MiB; steady 65 MiB, × 5/4 = 81.25, 82 MiB
			want: Plan{Values: MiB, Pending: queue1MiB, Process: process + 32*MiB, Limit: 132 * MiB, Request: 82 * MiB, Default: true},
		},
		{
			name: "a buffer serving fewer streams than the default gets no less",
			in:   Declared{MaxMessageBytes: MiB, MaxStreams: 10},
			want: Plan{Values: MiB, Pending: queue1MiB, Process: process, Limit: 92 * MiB, Request: 42 * MiB, Default: true},
		},
		{
			name: "a small ring that fits whole needs no byte budget",
			in:   Declared{Capacity: 100, MaxMessageBytes: 4 * KiB},
			// values 400 KiB, slots 50 KiB: need 72.44 MiB, limit 91 MiB;
			// steady 32.44 MiB, request 41 MiB
			want: Plan{Values: 400 * KiB, Slots: 50 * KiB, Pending: queue1MiB, Process: process, Limit: 91 * MiB, Request: 41 * MiB, Default: true},
		},
		{
			name: "the sample telemetry ring (1024 × 1 MiB) with maxBytes 64Mi fits a limit of 171 MiB",
			in:   Declared{Capacity: 1024, MaxMessageBytes: MiB, MaxBytes: 64 * MiB},
			// need 64 + 0.5 + 40 + 32 = 136.5 MiB; × 5/4 = 170.6, rounded up;
			// steady 96.5 MiB, × 5/4 = 120.6
			want: Plan{MaxBytes: 64 * MiB, Values: 64 * MiB, Slots: 512 * KiB, Pending: queue1MiB, Process: process,
				Limit: 171 * MiB, Request: 121 * MiB, Default: true},
		},
		{
			name: "a ring too large for the ceiling gets the budget the ceiling leaves, and the ceiling as its limit",
			in:   Declared{Capacity: 1024, MaxMessageBytes: MiB, Ceiling: GiB},
			// usable: 4/5 of 1 GiB = 858993456 bytes; minus 72.5 MiB fixed;
			// steady: usable minus the queue, × 5/4 = 973.99 MiB
			want: Plan{MaxBytes: 858993456 - fixedWithout - 512*KiB, Values: 858993456 - fixedWithout - 512*KiB,
				Slots: 512 * KiB, Pending: queue1MiB, Process: process, Limit: GiB, Request: 974 * MiB, Default: true},
		},
		{
			name: "a ceiling of zero means the default ceiling",
			in:   Declared{Capacity: 1024, MaxMessageBytes: MiB},
			want: Plan{MaxBytes: 858993456 - fixedWithout - 512*KiB, Values: 858993456 - fixedWithout - 512*KiB,
				Slots: 512 * KiB, Pending: queue1MiB, Process: process, Limit: GiB, Request: 974 * MiB, Default: true},
		},
		{
			name: "a budget larger than the whole ring is left out: the count bounds the ring first",
			in:   Declared{Capacity: 10, MaxMessageBytes: MiB, MaxBytes: 64 * MiB},
			// values 10 MiB; need 82 MiB + 5 KiB; × 5/4 = 102.5 MiB, rounded
			// up; steady 42 MiB + 5 KiB, × 5/4 = 52.5 MiB
			want: Plan{Values: 10 * MiB, Slots: 5 * KiB, Pending: queue1MiB, Process: process, Limit: 103 * MiB, Request: 53 * MiB, Default: true},
		},
		{
			name: "the Record's own limit is kept, and a ring without maxBytes gets what that limit leaves",
			in:   Declared{Capacity: 1024, MaxMessageBytes: MiB, Limit: 256 * MiB},
			// usable 204.8 MiB = 214748364 bytes; minus 48.5 MiB fixed
			want: Plan{MaxBytes: 214748364 - fixedWithout - 512*KiB, Values: 214748364 - fixedWithout - 512*KiB,
				Slots: 512 * KiB, Pending: queue1MiB, Process: process, Limit: 256 * MiB},
		},
		{
			name: "a limit of the Record's that is not a whole number of MiB is used as it is",
			in:   Declared{MaxMessageBytes: MiB, Limit: 100_000_000},
			want: Plan{Values: MiB, Pending: queue1MiB, Process: process, Limit: 100_000_000},
		},
		{
			name: "the Record's own limit is not held to the ceiling",
			in:   Declared{Capacity: 1024, MaxMessageBytes: MiB, MaxBytes: GiB, Limit: 2 * GiB, Ceiling: GiB},
			want: Plan{Values: GiB, Slots: 512 * KiB, Pending: queue1MiB, Process: process, Limit: 2 * GiB},
		},
		{
			name: "large messages make the intake queue larger: eight of them",
			in:   Declared{MaxMessageBytes: 8 * MiB},
			// queue 64 MiB + 8 MiB; need 32 + 72 + 8 = 112 MiB, limit 140 MiB;
			// steady 40 MiB, request 50 MiB
			want: Plan{Values: 8 * MiB, Pending: 72 * MiB, Process: process, Limit: 140 * MiB, Request: 50 * MiB, Default: true},
		},
		{
			name:    "a budget that needs more than the Record's limit does not fit, with the numbers",
			in:      Declared{Capacity: 1024, MaxMessageBytes: MiB, MaxBytes: 256 * MiB, Limit: 256 * MiB},
			wantErr: "the buffer process needs up to 328.5Mi (256Mi of values, 32Mi for the process, 40Mi for the intake queue and 512Ki for the ring's slots) and so a memory limit of 411Mi, above spec.resources.limits.memory of 256Mi",
		},
		{
			name:    "a budget that needs more than the ceiling does not fit, and says to set a limit",
			in:      Declared{Capacity: 1024, MaxMessageBytes: MiB, MaxBytes: 900 * MiB, Ceiling: GiB},
			wantErr: "above the manager's --buffer-memory-ceiling of 1Gi; lower spec.buffer.maxBytes, spec.buffer.capacity or spec.maxMessageBytes, or set spec.resources.limits.memory",
		},
		{
			name:    "a single-slot buffer whose own limit cannot hold the process does not fit",
			in:      Declared{MaxMessageBytes: MiB, Limit: 32 * MiB},
			wantErr: "the buffer process needs up to 73Mi (1Mi of values, 32Mi for the process and 40Mi for the intake queue) and so a memory limit of 92Mi, above spec.resources.limits.memory of 32Mi",
		},
		{
			name:    "a ring without maxBytes whose limit leaves less than one message does not fit",
			in:      Declared{Capacity: 1024, MaxMessageBytes: MiB, Limit: 90 * MiB},
			wantErr: "a memory limit of 90Mi (spec.resources.limits.memory) holds 72Mi, which leaves 0 for values after 32Mi for the process, 40Mi for the intake queue and 512Ki for the ring's slots: less than one message of spec.maxMessageBytes 1Mi",
		},
		{
			name:    "a million slots alone can exceed a small ceiling",
			in:      Declared{Capacity: 1_000_000, MaxMessageBytes: KiB, Ceiling: 256 * MiB},
			wantErr: "for the ring's slots: less than one message",
		},
		{
			name:    "a budget below one message does not fit",
			in:      Declared{Capacity: 8, MaxMessageBytes: MiB, MaxBytes: 512 * KiB},
			wantErr: "spec.buffer.maxBytes 512Ki is less than spec.maxMessageBytes 1Mi",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Size(tt.in)
			if tt.wantErr != "" {
				var dnf *DoesNotFitError
				if !errors.As(err, &dnf) || !errors.Is(err, ErrDoesNotFit) {
					t.Fatalf("Size(%+v): got (%+v, %v), want a *DoesNotFitError", tt.in, got, err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Size(%+v): got error\n%q\nwant it to contain\n%q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Size(%+v): got error %v, want %+v", tt.in, err, tt.want)
			}
			if got != tt.want {
				t.Fatalf("Size(%+v):\ngot  %+v\nwant %+v", tt.in, got, tt.want)
			}
			// What the plan promises: the worst case fits in the usable part
			// of its limit, and a default limit is within the ceiling.
			if got.Need() > Usable(got.Limit) {
				t.Errorf("need %d is above the usable %d of limit %d", got.Need(), Usable(got.Limit), got.Limit)
			}
			if ceiling := max(tt.in.Ceiling, DefaultCeiling); got.Default && got.Limit > ceiling {
				t.Errorf("default limit %d is above the ceiling %d", got.Limit, ceiling)
			}
		})
	}
}

func TestPendingLimits(t *testing.T) {
	tests := []struct {
		maxMessageBytes int64
		wantBytes       int64
	}{
		{KiB, 32 * MiB},
		{MiB, 32 * MiB},
		{4 * MiB, 32 * MiB},
		{5 * MiB, 40 * MiB},
		{8 * MiB, 64 * MiB},
	}
	for _, tt := range tests {
		msgs, bytes := PendingLimits(tt.maxMessageBytes)
		if msgs != PendingMessages || bytes != tt.wantBytes {
			t.Errorf("PendingLimits(%d): got (%d, %d), want (%d, %d)", tt.maxMessageBytes, msgs, bytes, PendingMessages, tt.wantBytes)
		}
	}
}

func TestMinLimitIsTheProcessAndTheSmallestQueue(t *testing.T) {
	// (32 + 32 + 8) MiB × 5/4
	if got, want := MinLimit(), 90*MiB; got != want {
		t.Errorf("MinLimit: got %s, want %s", Format(got), Format(want))
	}
}

func TestGoMemoryLimitIsNinetyPercent(t *testing.T) {
	if got, want := GoMemoryLimit(141*MiB), 141*MiB/100*90; got != want {
		t.Errorf("GoMemoryLimit(141Mi): got %d, want %d", got, want)
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 512: "512", 512 * KiB: "512Ki", 1536: "1.5Ki", 64 * MiB: "64Mi", 2 * GiB: "2Gi",
		MiB + MiB/2: "1.5Mi", 100_000_000: "95.4Mi",
	} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d): got %q, want %q", n, got, want)
		}
	}
}
