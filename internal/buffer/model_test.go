package buffer

import (
	"errors"
	"testing"
)

// A model is the simplest possible implementation of one buffer type:
// slices and counters, no concurrency. The fuzz tests run the same random
// operations against a model and a real buffer and compare every result.
type model interface {
	push(v int) error
	subscribe(cfg subscribeConfig)
	recv(i int) (Item[int], error)
	closeReader(i int)
	close()
	peek() (Item[int], bool)
	stats() Stats
}

// readerModel is a model reader; what its fields mean depends on the type.
type readerModel struct {
	pos    uint64 // ring: next seq; single-latest: last seq seen
	closed bool
}

// ringModel keeps every value ever pushed. With a byte budget (maxBytes >
// 0) it also keeps each value's size, and head, the oldest value the
// budget left; without one, head is unused and only the count evicts.
type ringModel struct {
	capacity int
	maxBytes int64
	size     func(int) int64
	vals     []int
	sizes    []int64
	head     uint64
	rs       []*readerModel
	closed   bool
	st       Stats
}

func (m *ringModel) tail() uint64 { return uint64(len(m.vals)) }

// oldest is the oldest value retained: the newest capacity values, and of
// them the newest ones whose bytes fit in the budget.
func (m *ringModel) oldest() uint64 {
	o := max(m.head, 1)
	if m.tail() > uint64(m.capacity) {
		o = max(o, m.tail()-uint64(m.capacity)+1)
	}
	return o
}

// bytes sums the sizes of the retained values.
func (m *ringModel) bytes() int64 {
	var n int64
	for s := m.oldest(); s <= m.tail(); s++ {
		n += m.sizes[s-1]
	}
	return n
}

func (m *ringModel) push(v int) error {
	var sz int64
	if m.maxBytes > 0 {
		if sz = m.size(v); sz > m.maxBytes {
			return &TooLargeError{Size: sz, MaxBytes: m.maxBytes}
		}
	}
	m.vals = append(m.vals, v)
	m.sizes = append(m.sizes, sz)
	if m.maxBytes > 0 {
		m.head = m.oldest()
		for m.bytes() > m.maxBytes {
			m.head++
		}
	}
	return nil
}

func (m *ringModel) subscribe(cfg subscribeConfig) {
	r := &readerModel{pos: m.tail() + 1}
	switch cfg.start {
	case StartAtOldest:
		r.pos = m.oldest()
	case StartAfterSeq:
		r.pos = min(cfg.after, m.tail()) + 1
	}
	m.rs = append(m.rs, r)
}

func (m *ringModel) recv(i int) (Item[int], error) {
	r := m.rs[i]
	switch {
	case r.closed:
		return Item[int]{}, ErrClosed
	case r.pos < m.oldest():
		missed := m.oldest() - r.pos
		r.pos = m.oldest()
		m.st.LagEvents++
		m.st.LaggedValues += missed
		return Item[int]{}, &LaggedError{Missed: missed}
	case r.pos > m.tail() && m.closed:
		return Item[int]{}, ErrClosed
	case r.pos > m.tail():
		return Item[int]{}, ErrEmpty
	}
	it := Item[int]{Seq: r.pos, Value: m.vals[r.pos-1]}
	r.pos++
	m.st.Delivered++
	return it, nil
}

func (m *ringModel) closeReader(i int) { m.rs[i].closed = true }
func (m *ringModel) close()            { m.closed = true }

func (m *ringModel) peek() (Item[int], bool) {
	if m.tail() == 0 {
		return Item[int]{}, false
	}
	return Item[int]{Seq: m.tail(), Value: m.vals[m.tail()-1]}, true
}

func (m *ringModel) stats() Stats {
	st := m.st
	st.Type, st.Capacity = TypeSpmcRing, m.capacity
	st.Produced, st.LastSeq = m.tail(), m.tail()
	st.Occupancy = int(m.tail() - m.oldest() + 1)
	st.Evicted = m.oldest() - 1
	if m.maxBytes > 0 {
		st.MaxBytes, st.Bytes = m.maxBytes, m.bytes()
	}
	st.Subscribers = countOpen(m.rs)
	return st
}

// latestModel keeps the newest value.
type latestModel struct {
	seq    uint64
	val    int
	rs     []*readerModel
	closed bool
	st     Stats
}

func (m *latestModel) push(v int) error { m.seq++; m.val = v; return nil }

func (m *latestModel) subscribe(subscribeConfig) {
	m.rs = append(m.rs, &readerModel{pos: max(m.seq, 1) - 1})
}

func (m *latestModel) recv(i int) (Item[int], error) {
	r := m.rs[i]
	switch {
	case r.closed:
		return Item[int]{}, ErrClosed
	case r.pos == m.seq && m.closed:
		return Item[int]{}, ErrClosed
	case r.pos == m.seq:
		return Item[int]{}, ErrEmpty
	}
	m.st.Skipped += m.seq - r.pos - 1
	m.st.Delivered++
	r.pos = m.seq
	return Item[int]{Seq: m.seq, Value: m.val}, nil
}

func (m *latestModel) closeReader(i int) { m.rs[i].closed = true }
func (m *latestModel) close()            { m.closed = true }

func (m *latestModel) peek() (Item[int], bool) {
	return Item[int]{Seq: m.seq, Value: m.val}, m.seq > 0
}

func (m *latestModel) stats() Stats {
	st := m.st
	st.Type, st.Capacity = TypeSingleLatest, 1
	st.Produced, st.LastSeq = m.seq, m.seq
	if m.seq > 0 {
		st.Occupancy = 1
	}
	st.Subscribers = countOpen(m.rs)
	return st
}

// mailboxModel keeps the pending value, if any.
type mailboxModel struct {
	seq     uint64
	pending *Item[int]
	rs      []*readerModel
	closed  bool
	st      Stats
}

func (m *mailboxModel) push(v int) error {
	m.seq++
	if m.pending != nil {
		m.st.Overwrites++
	}
	m.pending = &Item[int]{Seq: m.seq, Value: v}
	return nil
}

func (m *mailboxModel) subscribe(subscribeConfig) { m.rs = append(m.rs, &readerModel{}) }

func (m *mailboxModel) recv(i int) (Item[int], error) {
	switch {
	case m.rs[i].closed:
		return Item[int]{}, ErrClosed
	case m.pending == nil && m.closed:
		return Item[int]{}, ErrClosed
	case m.pending == nil:
		return Item[int]{}, ErrEmpty
	}
	it := *m.pending
	m.pending = nil
	m.st.Delivered++
	return it, nil
}

func (m *mailboxModel) closeReader(i int) { m.rs[i].closed = true }
func (m *mailboxModel) close()            { m.closed = true }

func (m *mailboxModel) peek() (Item[int], bool) {
	if m.pending == nil {
		return Item[int]{}, false
	}
	return *m.pending, true
}

func (m *mailboxModel) stats() Stats {
	st := m.st
	st.Type, st.Capacity = TypeMailbox, 1
	st.Produced, st.LastSeq = m.seq, m.seq
	if m.pending != nil {
		st.Occupancy = 1
	}
	st.Subscribers = countOpen(m.rs)
	return st
}

func countOpen(rs []*readerModel) int {
	n := 0
	for _, r := range rs {
		if !r.closed {
			n++
		}
	}
	return n
}

// checkAgainstModel decodes ops, one byte per operation (the low 3 bits
// pick it, the rest is its argument), applies each to b and m, and fails at
// the first difference.
func checkAgainstModel(t *testing.T, b Buffer[int], m model, ops []byte) {
	t.Helper()
	defer b.Close()
	var rs []Reader[int]
	closed := false
	for step, op := range ops {
		arg := int(op >> 3)
		switch op & 7 {
		case 0, 1, 2: // push, most often
			err := b.Push(step)
			if closed {
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("step %d: Push after Close: got %v, want ErrClosed", step, err)
				}
				continue
			}
			if want := m.push(step); !sameErr(err, want) {
				t.Fatalf("step %d: Push: got %v, want %v", step, err, want)
			}
		case 3: // subscribe: after the newest, from the oldest, or after a seq near the newest
			if len(rs) == 8 {
				continue
			}
			var opts []SubscribeOption
			switch arg % 3 {
			case 1:
				opts = append(opts, FromOldest())
			case 2:
				last := b.Stats().LastSeq
				opts = append(opts, AfterSeq(int64ToSeq(int64(last)-int64(arg/3)+4)))
			}
			r, err := b.Subscribe(opts...)
			if closed {
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("step %d: Subscribe after Close: got %v, want ErrClosed", step, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("step %d: Subscribe: %v", step, err)
			}
			rs = append(rs, r)
			m.subscribe(newSubscribeConfig(opts))
		case 4, 5: // receive, most often
			if len(rs) == 0 {
				continue
			}
			i := arg % len(rs)
			got, gotErr := rs[i].TryRecv()
			want, wantErr := m.recv(i)
			if !sameResult(got, gotErr, want, wantErr) {
				t.Fatalf("step %d: reader %d TryRecv: got (%+v, %v), want (%+v, %v)", step, i, got, gotErr, want, wantErr)
			}
		case 6: // close a reader, or (rarely) the buffer
			if arg >= 28 {
				b.Close()
				m.close()
				closed = true
				continue
			}
			if len(rs) == 0 {
				continue
			}
			i := arg % len(rs)
			rs[i].Close()
			m.closeReader(i)
		case 7: // peek and compare the counters
			got, gotOK := b.Peek()
			want, wantOK := m.peek()
			if got != want || gotOK != wantOK {
				t.Fatalf("step %d: Peek: got (%+v, %v), want (%+v, %v)", step, got, gotOK, want, wantOK)
			}
			if got, want := b.Stats(), m.stats(); got != want {
				t.Fatalf("step %d: Stats:\ngot  %+v\nwant %+v", step, got, want)
			}
		}
	}
	if got, want := b.Stats(), m.stats(); got != want {
		t.Fatalf("end: Stats:\ngot  %+v\nwant %+v", got, want)
	}
}

func int64ToSeq(v int64) uint64 { return uint64(max(v, 0)) }

// sameErr compares Push's errors: nil, or a *TooLargeError with the same
// numbers.
func sameErr(got, want error) bool {
	var gt, wt *TooLargeError
	if errors.As(want, &wt) {
		return errors.As(got, &gt) && *gt == *wt
	}
	return got == nil && want == nil
}

func sameResult(got Item[int], gotErr error, want Item[int], wantErr error) bool {
	var gl, wl *LaggedError
	switch {
	case errors.As(wantErr, &wl):
		return errors.As(gotErr, &gl) && gl.Missed == wl.Missed
	case wantErr != nil:
		return errors.Is(gotErr, wantErr)
	}
	return gotErr == nil && got == want
}

// fuzzSeeds are operation sequences that reach the interesting cases:
// lag, resume with a gap, close with values left, competing readers.
var fuzzSeeds = [][]byte{
	{},
	{3, 0, 0, 4, 7},
	{3, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 7},
	{0, 0, 0, 0, 0, 0, 11, 3, 4, 4, 4, 4, 7},
	{0, 0, 0, 0, 0, 0, 0, 0, 19, 4, 4, 4, 4, 7},
	{3, 3, 0, 4, 12, 0, 0, 0, 12, 4, 7},
	{3, 0, 0, 0, 0xfe, 4, 4, 4, 4, 4, 7, 0, 3},
	{3, 3, 6, 0, 4, 12, 7, 0xfe, 12, 7},
	{0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 19, 20, 21, 0xfe, 4, 12, 20, 7},
}

func FuzzRingModel(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(uint8(3), s)
		f.Add(uint8(1), s)
	}
	f.Fuzz(func(t *testing.T, capacity uint8, ops []byte) {
		c := int(capacity%16) + 1
		b, err := NewSpmcRing[int](c)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstModel(t, b, &ringModel{capacity: c}, ops)
	})
}

// modelSize is the byte size of value v in the budget fuzz test: the values
// are the step numbers, so sizes vary from 0 to 12 along a run.
func modelSize(v int) int64 { return int64(v * 7 % 13) }

// FuzzBudgetRingModel is FuzzRingModel for a ring with a byte budget of 1
// to 32 bytes, so that values are evicted for their bytes, for the count,
// or refused as larger than the whole budget, in any mix.
func FuzzBudgetRingModel(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(uint8(3), uint8(9), s)
		f.Add(uint8(8), uint8(12), s)
		f.Add(uint8(1), uint8(31), s)
	}
	f.Fuzz(func(t *testing.T, capacity, maxBytes uint8, ops []byte) {
		c, mb := int(capacity%16)+1, int64(maxBytes%32)+1
		b, err := NewSpmcRing(c, WithMaxBytes(mb, modelSize))
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstModel(t, b, &ringModel{capacity: c, maxBytes: mb, size: modelSize}, ops)
	})
}

func FuzzSingleLatestModel(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		checkAgainstModel(t, NewSingleLatest[int](), &latestModel{}, ops)
	})
}

func FuzzMailboxModel(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		checkAgainstModel(t, NewMailbox[int](), &mailboxModel{}, ops)
	})
}
