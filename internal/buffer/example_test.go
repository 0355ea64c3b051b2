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
