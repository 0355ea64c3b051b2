package netcut

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echo serves one line back per connection.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

func TestARelayPassesTrafficUntilCutAndAgainAfterRestore(t *testing.T) {
	r := Start(t, echo(t))
	if err := roundTrip(r.Addr()); err != nil {
		t.Fatalf("before the cut: got %v, want a round trip", err)
	}
	held, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	if _, err := held.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}

	r.Cut()
	if err := roundTrip(r.Addr()); err == nil {
		t.Error("after the cut: got a round trip, want a failure")
	}
	_ = held.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil {
		t.Error("after the cut: an open connection still reads, want it closed")
	}

	r.Restore()
	if err := roundTrip(r.Addr()); err != nil {
		t.Errorf("after the restore: got %v, want a round trip", err)
	}
}
