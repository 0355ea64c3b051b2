package buffer_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/recbuf/recbuf/internal/buffer"
)

func ExampleSpmcRing() {
	ring, err := buffer.NewSpmcRing[string](3)
	if err != nil {
		panic(err)
	}
	defer ring.Close()
	r, _ := ring.Subscribe()
	defer r.Close()

	// Five values into a ring of three: the reader falls behind.
	for _, v := range []string{"a", "b", "c", "d", "e"} {
		_ = ring.Push(v)
	}
	for {
		it, err := r.TryRecv()
		var lag *buffer.LaggedError
		switch {
		case errors.As(err, &lag):
			fmt.Println("missed", lag.Missed)
			continue // lag is not fatal
		case errors.Is(err, buffer.ErrEmpty):
			return
		}
		fmt.Println(it.Seq, it.Value)
	}
	// Output:
	// missed 2
	// 3 c
	// 4 d
	// 5 e
}

// A consumer that reconnects resumes after the last sequence number it saw,
// and is told the exact gap when that value is gone.
func ExampleAfterSeq() {
	ring, _ := buffer.NewSpmcRing[int](4)
	defer ring.Close()
	for v := 1; v <= 10; v++ {
		_ = ring.Push(v * 100)
	}
	for _, last := range []uint64{8, 3} {
		r, _ := ring.Subscribe(buffer.AfterSeq(last))
		fmt.Printf("resume after %d:", last)
		for {
			it, err := r.TryRecv()
			if errors.Is(err, buffer.ErrEmpty) {
				break
			}
			if err != nil {
				fmt.Printf(" (%v)", err)
				continue
			}
			fmt.Printf(" %d", it.Seq)
		}
		fmt.Println()
		r.Close()
	}
	// Output:
	// resume after 8: 9 10
	// resume after 3: (reader lagged: missed 3 values) 7 8 9 10
}

func ExampleSingleLatest() {
	latest := buffer.NewSingleLatest[float64]()
	defer latest.Close()
	_ = latest.Push(20.5)
	_ = latest.Push(21.0)

	// A new reader gets the current value once.
	r, _ := latest.Subscribe()
	defer r.Close()
	it, _ := r.TryRecv()
	fmt.Println(it.Value)
	_, err := r.TryRecv()
	fmt.Println(err)

	// Values replaced before the reader looked are skipped.
	_ = latest.Push(21.5)
	_ = latest.Push(22.0)
	it, _ = r.Recv(context.Background())
	fmt.Println(it.Value, "skipped:", latest.Stats().Skipped)
	// Output:
	// 21
	// buffer empty
	// 22 skipped: 1
}

func ExampleMailbox() {
	mb := buffer.NewMailbox[string]()
	_ = mb.Push("start")
	_ = mb.Push("stop") // replaces the unread "start"

	r, _ := mb.Subscribe()
	defer r.Close()
	it, _ := r.TryRecv()
	fmt.Println(it.Value, "overwrites:", mb.Stats().Overwrites)

	// Close still delivers a pending value, then reports closed.
	_ = mb.Push("reset")
	mb.Close()
	it, _ = r.TryRecv()
	fmt.Println(it.Value)
	_, err := r.TryRecv()
	fmt.Println(err)
	// Output:
	// stop overwrites: 1
	// reset
	// buffer closed
}

func ExampleNew() {
	b, err := buffer.New[[]byte](buffer.TypeSpmcRing, 1000)
	if err != nil {
		panic(err)
	}
	defer b.Close()
	st := b.Stats()
	fmt.Println(b.Type(), st.Capacity)

	_, err = buffer.New[[]byte](buffer.TypeSpmcRing, 0)
	fmt.Println(errors.Is(err, buffer.ErrInvalidCapacity), err)
	// Output:
	// SpmcRing 1000
	// true invalid buffer capacity: 0, want at least 1
}

// A ring with a byte budget holds at most so many bytes of values besides
// its capacity: here at most 10 values and 8 bytes of strings. A reader
// that falls behind is told exactly what it missed, whichever bound
// evicted the values; a value larger than the whole budget is refused.
func ExampleWithMaxBytes() {
	size := func(s string) int64 { return int64(len(s)) }
	ring, _ := buffer.NewSpmcRing(10, buffer.WithMaxBytes(8, size))
	defer ring.Close()
	r, _ := ring.Subscribe()
	defer r.Close()

	for _, v := range []string{"aaa", "bbb", "cc", "dddd"} {
		_ = ring.Push(v) // "dddd" makes 12 bytes: "aaa" and "bbb" go
	}
	if err := ring.Push("far too long"); errors.Is(err, buffer.ErrTooLarge) {
		fmt.Println("refused:", err)
	}
	for {
		it, err := r.TryRecv()
		var lag *buffer.LaggedError
		switch {
		case errors.As(err, &lag):
			fmt.Println("missed", lag.Missed)
			continue
		case errors.Is(err, buffer.ErrEmpty):
			st := ring.Stats()
			fmt.Printf("holding %d values, %d of %d bytes; %d evicted\n", st.Occupancy, st.Bytes, st.MaxBytes, st.Evicted)
			return
		}
		fmt.Println(it.Seq, it.Value)
	}
	// Output:
	// refused: value of 12 bytes larger than the byte budget of 8
	// missed 2
	// 3 cc
	// 4 dddd
	// holding 2 values, 6 of 8 bytes; 2 evicted
}

func ExampleWithExternalSeq() {
	// A ring restored from a stream that holds messages 7, 8 and 11 (9
	// and 10 were deleted): the stream's numbers, gaps included.
	ring, err := buffer.NewSpmcRing(5, buffer.WithExternalSeq[string]())
	if err != nil {
		panic(err)
	}
	defer ring.Close()
	_ = ring.PushSeq(7, "g")
	_ = ring.PushSeq(8, "h")
	_ = ring.PushSeq(11, "k")

	// A consumer that saw 5 resumes: 6 is before the stream's first value,
	// 9 and 10 are gone; each gap is an exact lag.
	r, _ := ring.Subscribe(buffer.AfterSeq(5))
	defer r.Close()
	for {
		it, err := r.TryRecv()
		var lag *buffer.LaggedError
		switch {
		case errors.As(err, &lag):
			fmt.Println("missed", lag.Missed)
			continue
		case errors.Is(err, buffer.ErrEmpty):
			return
		}
		fmt.Println(it.Seq, it.Value)
	}
	// Output:
	// missed 1
	// 7 g
	// 8 h
	// missed 2
	// 11 k
}
