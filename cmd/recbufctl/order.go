package main

import "github.com/recbuf/recbuf/pkg/client"

// The order checker is what makes `recbufctl stream` a test tool and not
// only a reader: the e2e suite asserts on its summary that a stream lost
// nothing it did not announce, across lag, reconnects and failovers.

// streamSummary is the last line of `stream`.
type streamSummary struct {
	Event     string `json:"event"`
	Values    uint64 `json:"values"`
	FirstSeq  uint64 `json:"firstSeq"`
	LastSeq   uint64 `json:"lastSeq"`
	LagEvents uint64 `json:"lagEvents"`
	Missed    uint64 `json:"missed"`
	// OutOfOrder counts values whose sequence number did not grow.
	OutOfOrder uint64 `json:"outOfOrder"`
	// DeviceOutOfOrder counts values whose device's sequence number did not
	// grow (meaningful with one publisher per device).
	DeviceOutOfOrder uint64 `json:"deviceOutOfOrder"`
	// Unannounced counts jumps in sequence numbers that no lag event (of
	// that exact size) announced.
	Unannounced uint64 `json:"unannounced"`
	Resets      uint64 `json:"resets"`
	Reconnects  uint64 `json:"reconnects"`
	// Ordered is true when OutOfOrder, DeviceOutOfOrder and Unannounced are 0.
	Ordered bool   `json:"ordered"`
	Error   string `json:"error,omitempty"`
}

func (s *streamSummary) ordered() bool {
	return s.OutOfOrder == 0 && s.DeviceOutOfOrder == 0 && s.Unannounced == 0
}

// orderCheck follows a stream's values and lag events into a summary,
// counting whatever breaks the stream's order.
type orderCheck struct {
	s *streamSummary
	// pendingMissed was announced by lag events and not yet seen as a jump.
	pendingMissed uint64
	// restarted is set when the next value may start a new numbering.
	restarted bool
	deviceSeq map[string]uint64
}

func newOrderCheck(s *streamSummary) *orderCheck {
	return &orderCheck{s: s, deviceSeq: map[string]uint64{}}
}

// lag records a lag event: the next value may be missed values further on.
func (c *orderCheck) lag(missed uint64) {
	c.s.LagEvents++
	c.s.Missed += missed
	c.pendingMissed += missed
}

// restart records that the stream restarted on another buffer process,
// which numbers its values afresh.
func (c *orderCheck) restart() {
	c.s.Resets++
	c.restarted = true
}

// value checks v against the values and lag events before it.
func (c *orderCheck) value(v client.Value) {
	s := c.s
	switch {
	case s.Values == 0:
		s.FirstSeq = v.Seq
	case c.restarted:
		// Nothing to compare this one with.
	case v.Seq <= s.LastSeq:
		s.OutOfOrder++
	case v.Seq-s.LastSeq-1 != c.pendingMissed:
		s.Unannounced++
	}
	c.restarted, c.pendingMissed = false, 0
	if v.Device != "" {
		if last, ok := c.deviceSeq[v.Device]; ok && v.DeviceSeq <= last {
			s.DeviceOutOfOrder++
		}
		c.deviceSeq[v.Device] = v.DeviceSeq
	}
	s.Values++
	s.LastSeq = v.Seq
}
