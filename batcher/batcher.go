package batcher

import (
	"context"
	"math"
	"time"
)

// initialCap bounds the batch slice allocated up front, so that a large
// MaxSize costs memory only when batches actually grow that large.
const initialCap = 1024

// Batcher groups the items of a channel into batches; see Run.
type Batcher[T any] struct {
	policy Policy
	batch  []T
}

// New returns a Batcher configured by cfg, or an error wrapping ErrConfig.
func New[T any](cfg Config) (*Batcher[T], error) {
	p, err := NewPolicy(cfg)
	if err != nil {
		return nil, err
	}
	return &Batcher[T]{
		policy: *p,
		batch:  make([]T, 0, min(p.cfg.MaxSize, initialCap)),
	}, nil
}

// Run receives items from in and calls flush with each batch, in arrival
// order; a batch holds 1 to MaxSize items. The slice passed to flush is
// reused after flush returns: flush must not keep it. flush is called on
// Run's goroutine and must not be nil.
//
// Run returns nil when in is closed and ctx.Err() when ctx is done, in both
// cases after flushing the batch in hand. Once Run sees ctx done it receives
// nothing further: items still in the channel stay there.
func (b *Batcher[T]) Run(ctx context.Context, in <-chan T, flush func(batch []T)) error {
	p := &b.policy
	p.Reset()
	noWait := p.cfg.MaxWait < 0
	// One timer for the whole run, armed only while a batch is held.
	// Created stopped: a timer that never fired has nothing in its channel.
	// With Go 1.23 timers (go.mod), Stop and Reset leave no stale tick in
	// timer.C, so neither needs draining.
	timer := time.NewTimer(math.MaxInt64)
	timer.Stop()
	done := ctx.Done()
	batch := b.batch[:0]

	emit := func() {
		if len(batch) == 0 {
			return
		}
		timer.Stop()
		flush(batch)
		clear(batch) // drop references, so that items can be collected
		batch = batch[:0]
		p.Reset()
	}
	// Keep the grown slice for the next Run.
	defer func() { b.batch = batch[:0] }()

	for {
		// Cancellation first, so that a busy input cannot delay it.
		select {
		case <-done:
			emit()
			return ctx.Err()
		default:
		}

		var (
			v  T
			ok bool
		)
		if len(batch) == 0 {
			select {
			case <-done:
				return ctx.Err()
			case v, ok = <-in:
			}
		} else {
			select {
			case <-done:
				emit()
				return ctx.Err()
			case v, ok = <-in:
			case <-timer.C:
				emit()
				continue
			}
		}
		if !ok {
			emit()
			return nil
		}

		// One clock reading per wake-up: the items taken below arrived
		// together as far as the policy can tell.
		now := time.Now()
		wasEmpty := len(batch) == 0
		batch = append(batch, v)
		full := p.Add(now)
		// Take what is already waiting, without blocking.
	drain:
		for !full {
			select {
			case v, ok = <-in:
				if !ok {
					emit()
					return nil
				}
				batch = append(batch, v)
				full = p.Add(now)
			default:
				break drain
			}
		}
		switch {
		case full || noWait || p.UntilNext(now) == 0:
			// Also when due: select may have preferred the input over
			// an expired timer.
			emit()
		case wasEmpty:
			timer.Reset(p.UntilNext(now))
		}
	}
}
