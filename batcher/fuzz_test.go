package batcher

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// FuzzBatcher drives Run with a sequence of items and gaps decoded from the
// input, on the fake clock of a synctest bubble, and checks that every item
// comes out exactly once and in order, that no batch is empty or exceeds
// MaxSize, and that each batch went out on time.
//
// Input: byte 0 picks MaxSize (1-16); byte 1 MaxWait (NoWait, the default or
// 1-3.5ms); byte 2 the channel's capacity (0-7, low bits) and the ending
// (cancel when the high bit is set, else close). Every further byte below
// 0xC0 sends the next item; one from 0xC0 sleeps (b&0x3F)·100µs.
func FuzzBatcher(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		cfg := Config{MaxSize: 1 + int(data[0]%16)}
		switch w := data[1] % 8; w {
		case 0:
			cfg.MaxWait = NoWait
		case 1: // the default
		default:
			cfg.MaxWait = time.Duration(w) * 500 * time.Microsecond
		}
		capacity, cancelAtEnd := int(data[2]%8), data[2]&0x80 != 0
		ops := data[3:]
		synctest.Test(t, func(t *testing.T) {
			checkRun(t, cfg, capacity, cancelAtEnd, ops)
		})
	})
}

func checkRun(t *testing.T, cfg Config, capacity int, cancelAtEnd bool, ops []byte) {
	b, err := New[int](cfg)
	if err != nil {
		t.Fatal(err)
	}
	maxSize, maxWait := b.policy.cfg.MaxSize, b.policy.cfg.MaxWait
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	in := make(chan int, capacity)
	var c collector[int]
	errc := run(ctx, b, in, c.flush)

	var sentAt []time.Time
	for _, op := range ops {
		if op >= 0xC0 {
			time.Sleep(time.Duration(op&0x3F) * 100 * time.Microsecond)
			continue
		}
		sentAt = append(sentAt, time.Now())
		in <- len(sentAt) - 1
	}
	if cancelAtEnd {
		cancel()
	} else {
		close(in)
	}
	err = <-errc
	if cancelAtEnd && err != context.Canceled || !cancelAtEnd && err != nil {
		t.Fatalf("Run = %v (cancel %v)", err, cancelAtEnd)
	}

	got := c.items()
	if cancelAtEnd {
		for len(in) > 0 { // left in the channel, never received
			got = append(got, <-in)
		}
	}
	if !slices.Equal(got, ints(0, len(sentAt))) {
		t.Fatalf("items out: %v, want 0..%d in order", got, len(sentAt)-1)
	}

	for i, batch := range c.batches {
		if len(batch) == 0 || len(batch) > maxSize {
			t.Fatalf("batch %d has %d items, MaxSize %d", i, len(batch), maxSize)
		}
		// On the fake clock an item arrives when it is sent.
		age := c.at[i].Sub(sentAt[batch[0]])
		switch {
		case maxWait < 0 && age != 0:
			t.Fatalf("NoWait batch %d flushed %v after its first item", i, age)
		case age > maxWait && maxWait >= 0:
			t.Fatalf("batch %d flushed %v after its first item, MaxWait %v", i, age, maxWait)
		case maxWait > 0 && len(batch) < maxSize && i < len(c.batches)-1 && age != maxWait:
			// Neither full nor the final flush: only the timer sent it.
			t.Fatalf("batch %d of %d flushed %v after its first item, want %v", i, len(batch), age, maxWait)
		}
	}
}
