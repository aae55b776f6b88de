package batcher

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// collector records every batch (copied) and the time it was flushed.
type collector[T any] struct {
	batches [][]T
	at      []time.Time
}

func (c *collector[T]) flush(b []T) {
	c.batches = append(c.batches, slices.Clone(b))
	c.at = append(c.at, time.Now())
}

func (c *collector[T]) items() []T {
	return slices.Concat(c.batches...)
}

// run starts b.Run on a new goroutine of the bubble.
func run[T any](ctx context.Context, b *Batcher[T], in <-chan T, flush func([]T)) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx, in, flush) }()
	return errc
}

func mustNew[T any](t *testing.T, cfg Config) *Batcher[T] {
	t.Helper()
	b, err := New[T](cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ints(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func wantBatches[T comparable](t *testing.T, c *collector[T], want ...[]T) {
	t.Helper()
	if len(c.batches) != len(want) {
		t.Fatalf("batches = %v, want %v", c.batches, want)
	}
	for i := range want {
		if !slices.Equal(c.batches[i], want[i]) {
			t.Fatalf("batch %d = %v, want %v", i, c.batches[i], want[i])
		}
	}
}

func TestSizeFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew[int](t, Config{MaxSize: 4, MaxWait: time.Hour})
		in := make(chan int)
		var c collector[int]
		errc := run(t.Context(), b, in, c.flush)
		t0 := time.Now()
		for i := range 10 {
			in <- i
		}
		synctest.Wait()
		wantBatches(t, &c, ints(0, 4), ints(4, 8))
		for i, at := range c.at {
			if at != t0 {
				t.Fatalf("batch %d flushed after %v, want at once", i, at.Sub(t0))
			}
		}
		close(in)
		if err := <-errc; err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		wantBatches(t, &c, ints(0, 4), ints(4, 8), ints(8, 10))
	})
}

func TestTimeFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const wait = 10 * time.Millisecond
		b := mustNew[int](t, Config{MaxSize: 100, MaxWait: wait})
		in := make(chan int)
		var c collector[int]
		errc := run(t.Context(), b, in, c.flush)

		t0 := time.Now()
		in <- 0
		time.Sleep(3 * time.Millisecond)
		in <- 1
		time.Sleep(6 * time.Millisecond)
		in <- 2 // 9ms: still in the first batch
		time.Sleep(2 * time.Millisecond)
		t1 := time.Now()
		in <- 3 // 11ms: the first batch went at 10ms
		time.Sleep(wait)
		synctest.Wait()
		wantBatches(t, &c, []int{0, 1, 2}, []int{3})
		if d := c.at[0].Sub(t0); d != wait {
			t.Fatalf("first batch flushed %v after its first item, want %v", d, wait)
		}
		if d := c.at[1].Sub(t1); d != wait {
			t.Fatalf("second batch flushed %v after its first item, want %v", d, wait)
		}
		close(in)
		if err := <-errc; err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if len(c.batches) != 2 {
			t.Fatalf("close flushed an empty batch: %v", c.batches)
		}
	})
}

func TestNoWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew[int](t, Config{MaxSize: 3, MaxWait: NoWait})
		in := make(chan int, 10)
		for i := range 5 {
			in <- i // ready before Run starts: taken without blocking
		}
		var c collector[int]
		t0 := time.Now()
		errc := run(t.Context(), b, in, c.flush)
		synctest.Wait()
		wantBatches(t, &c, []int{0, 1, 2}, []int{3, 4})
		in <- 5
		synctest.Wait()
		wantBatches(t, &c, []int{0, 1, 2}, []int{3, 4}, []int{5})
		for i, at := range c.at {
			if at != t0 {
				t.Fatalf("batch %d flushed after %v, want at once", i, at.Sub(t0))
			}
		}
		close(in)
		if err := <-errc; err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	})
}

func TestFlushOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew[int](t, Config{MaxSize: 100, MaxWait: time.Hour})
		in := make(chan int, 10)
		var c collector[int]
		errc := run(t.Context(), b, in, c.flush)
		in <- 1
		in <- 2
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(c.batches) != 0 {
			t.Fatalf("flushed early: %v", c.batches)
		}
		in <- 3
		closed := time.Now()
		close(in)
		if err := <-errc; err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		wantBatches(t, &c, []int{1, 2, 3})
		if c.at[0] != closed {
			t.Fatalf("flushed %v after close, want at once", c.at[0].Sub(closed))
		}
	})
}

func TestFlushOnCancel(t *testing.T) {
	tests := []struct {
		name    string
		held    []int // received before ctx ends
		wantErr error
		timeout bool // end by deadline rather than cancel
	}{
		{name: "cancel with a batch held", held: []int{1, 2, 3}, wantErr: context.Canceled},
		{name: "cancel with nothing held", wantErr: context.Canceled},
		{name: "deadline with a batch held", held: []int{7}, wantErr: context.DeadlineExceeded, timeout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := mustNew[int](t, Config{MaxSize: 100, MaxWait: time.Hour})
				ctx, cancel := context.WithCancel(t.Context())
				if tt.timeout {
					ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
				}
				defer cancel()
				in := make(chan int, 10)
				var c collector[int]
				errc := run(ctx, b, in, c.flush)
				for _, v := range tt.held {
					in <- v
				}
				synctest.Wait()
				if !tt.timeout {
					cancel()
				}
				if err := <-errc; !errors.Is(err, tt.wantErr) {
					t.Fatalf("Run = %v, want %v", err, tt.wantErr)
				}
				if len(tt.held) == 0 {
					wantBatches(t, &c)
				} else {
					wantBatches(t, &c, tt.held)
				}
			})
		})
	}
}

func TestCancelLeavesChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew[int](t, Config{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		in := make(chan int, 10)
		for i := range 5 {
			in <- i
		}
		var c collector[int]
		if err := b.Run(ctx, in, c.flush); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want Canceled", err)
		}
		if len(c.batches) != 0 || len(in) != 5 {
			t.Fatalf("after a done ctx: batches %v, %d items left, want none and 5", c.batches, len(in))
		}
	})
}

func TestOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 5000
		b := mustNew[int](t, Config{MaxSize: 7, MaxWait: 2 * time.Millisecond})
		in := make(chan int, 16)
		var c collector[int]
		errc := run(t.Context(), b, in, c.flush)
		for i := range n {
			in <- i
			// Bursts, short gaps and gaps past MaxWait.
			switch {
			case i%50 < 2:
				time.Sleep(3 * time.Millisecond)
			case i%13 == 0:
				time.Sleep(time.Millisecond)
			}
		}
		close(in)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if got := c.items(); !slices.Equal(got, ints(0, n)) {
			t.Fatalf("items out of order or lost: %d items", len(got))
		}
		var sizes [8]int
		for _, bt := range c.batches {
			if len(bt) == 0 || len(bt) > 7 {
				t.Fatalf("batch of %d items", len(bt))
			}
			sizes[len(bt)]++
		}
		if sizes[7] == 0 || sizes[1] == 0 {
			t.Fatalf("pattern should give both full and single batches: %v", sizes)
		}
	})
}

func TestSliceReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew[string](t, Config{MaxSize: 4, MaxWait: time.Millisecond})
		var kept []string // breaks the contract on purpose, to observe reuse
		var first *string
		flushes := 0
		check := func(batch []string) {
			flushes++
			if first == nil {
				first, kept = &batch[0], batch
				return
			}
			if &batch[0] != first {
				t.Errorf("flush %d: new backing array", flushes)
			}
			// What the earlier, longer batch held beyond this one was
			// cleared, so that the batcher keeps no references.
			for i := len(batch); i < len(kept); i++ {
				if kept[i] != "" {
					t.Errorf("flush %d: stale item %q at %d", flushes, kept[i], i)
				}
			}
		}
		for round := range 2 { // a second Run reuses the same slice
			in := make(chan string, 8)
			for _, s := range []string{"a", "b", "c", "d", "e"} {
				in <- s
			}
			close(in)
			if err := b.Run(t.Context(), in, check); err != nil {
				t.Fatal(err)
			}
			if want := 2 * (round + 1); flushes != want {
				t.Fatalf("flushes = %d, want %d", flushes, want)
			}
		}
	})
}

// TestRunAllocs runs in real time: AllocsPerRun counts the whole process.
func TestRunAllocs(t *testing.T) {
	const size, perRun = 64, 64 * 16
	b := mustNew[int](t, Config{MaxSize: size, MaxWait: time.Hour})
	in := make(chan int, size)
	sig := make(chan struct{})
	seen := 0
	errc := make(chan error, 1)
	go func() {
		errc <- b.Run(context.Background(), in, func(batch []int) {
			seen += len(batch)
			if seen%perRun == 0 {
				sig <- struct{}{}
			}
		})
	}()
	allocs := testing.AllocsPerRun(20, func() {
		for i := range perRun {
			in <- i
		}
		<-sig
	})
	close(in)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per %d items, want 0", allocs, perRun)
	}
}
