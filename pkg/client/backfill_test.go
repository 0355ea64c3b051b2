package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/recbuf/recbuf/pkg/client"
)

// TestStreamBackfillsThenResumesAfterWhatItDelivered opens a stream with
// the newest 3 of 10 values, drops the connection after the second and
// checks that the reconnect resumes after it rather than backfilling
// again: 8, 9, 10, then the live 11.
func TestStreamBackfillsThenResumesAfterWhatItDelivered(t *testing.T) {
	srv, buf := server(t)
	pushN(t, buf, 10)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var (
		got       []uint64
		backfills []client.Backfill
	)
	err := newClient(t, srv.URL+"/v1/records/r").Stream(ctx, client.HandlerFunc(func(_ context.Context, v client.Value) error {
		got = append(got, v.Seq)
		switch v.Seq {
		case 9:
			srv.CloseClientConnections()
		case 10:
			pushN(t, buf, 1)
		case 11:
			cancel()
		}
		return nil
	}),
		client.Last(3),
		client.OnBackfill(func(b client.Backfill) { backfills = append(backfills, b) }),
		client.WithBackoff(time.Millisecond, 10*time.Millisecond),
	)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Stream: got %v, want context.Canceled", err)
	}
	if want := []uint64{8, 9, 10, 11}; len(got) != len(want) || got[0] != 8 || got[1] != 9 || got[2] != 10 || got[3] != 11 {
		t.Errorf("got values %v, want %v", got, want)
	}
	if len(backfills) != 1 || backfills[0] != (client.Backfill{Count: 3, LastSeq: 10}) {
		t.Errorf("got backfills %+v, want one of 3 through 10", backfills)
	}
}
