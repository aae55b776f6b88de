package processor

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// idleCheck is how long the pull loop waits for a message before it checks
// that its consumer still exists and is not holding requests back.
const idleCheck = 5 * time.Second

// idleTick is how often an idle pull loop hands the batch loop a tick.
const idleTick = 250 * time.Millisecond

// iterator is the partition's pull iterator, which the pull loop may
// replace (and then reads at once) while the batch loop may stop it.
type iterator struct {
	mu      sync.Mutex
	it      jetstream.MessagesContext
	open    func() (jetstream.MessagesContext, error)
	stopped bool
}

func newIterator(open func() (jetstream.MessagesContext, error)) (*iterator, error) {
	it, err := open()
	if err != nil {
		return nil, err
	}
	return &iterator{it: it, open: open}, nil
}

func (i *iterator) current() jetstream.MessagesContext {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.it
}

// drain stops pulling; Next still returns what is buffered.
func (i *iterator) drain() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.stopped = true
	i.it.Drain()
}

// stop stops pulling and drops what is buffered.
func (i *iterator) stop() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.stopped = true
	i.it.Stop()
}

// renew replaces the iterator with a new one, unless it was stopped.
func (i *iterator) renew() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return nil
	}
	it, err := i.open()
	if err != nil {
		return err
	}
	i.it.Stop()
	i.it = it
	return nil
}

// pull moves messages from the iterator to the batcher until the iterator
// is closed.
func (p *partition) pull(cons jetstream.Consumer, its *iterator, in chan<- jetstream.Msg) {
	defer close(in)
	missing := 0 // consecutive checks that found no consumer
	idle := time.Duration(0)
	wait := jetstream.NextMaxWait(idleTick) // built once: it allocates
	it := its.current()
	for {
		msg, err := it.Next(wait)
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat) {
			// Idle: let the batch loop do its housekeeping.
			select {
			case in <- nil: // an idle tick
			default:
			}
			if idle += idleTick; idle < idleCheck && errors.Is(err, nats.ErrTimeout) {
				continue
			}
			idle = 0
			switch p.checkIdle(cons, &missing) {
			case idleGone:
				p.pullErr = jetstream.ErrConsumerNotFound
				return
			case idleStuck:
				if err := its.renew(); err != nil {
					p.log.Warn().Err(err).Msg("pull anew")
				}
				it = its.current()
			}
			continue
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			if p.pullErr == nil {
				p.pullErr = err
			}
			return
		}
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, nats.ErrConnectionClosed) {
			p.pullErr = err
			return
		}
		if err != nil {
			// Heartbeat loss and similar: the iterator re-issues its pulls.
			p.log.Warn().Err(err).Msg("pull")
			time.Sleep(100 * time.Millisecond)
			continue
		}
		idle = 0
		in <- msg
	}
}

type idleState int

const (
	idleFine  idleState = iota
	idleGone            // the consumer is gone
	idleStuck           // the consumer holds requests it does not deliver
)

// checkIdle asks the server about a consumer that has delivered nothing
// for idleCheck. A deletion is not always announced to a waiting
// iterator; and on a cluster that lost a node, an iterator has been seen
// to wait for good on pulls the server no longer held (it counted none
// waiting) while the consumer had requests to deliver: a new iterator
// pulls anew.
func (p *partition) checkIdle(cons jetstream.Consumer, missing *int) idleState {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	info, err := cons.Info(ctx)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		// Twice in a row, a check apart: a server that has just
		// restarted may not have loaded its consumers yet.
		if *missing++; *missing == 2 {
			return idleGone
		}
		return idleFine
	case err != nil:
		*missing = 0
		p.log.Warn().Err(err).Msg("consumer info while idle")
		return idleFine
	}
	*missing = 0
	// No pull of this process waits on the server (waiting 0), so nothing
	// can be on its way to the iterator that a new one would leave behind.
	if info.NumPending > 0 && info.NumWaiting == 0 {
		p.log.Warn().Uint64("pending", info.NumPending).Int("ack_pending", info.NumAckPending).Int("waiting", info.NumWaiting).
			Dur("idle", idleCheck).Msg("the consumer holds requests but delivered none: pulling anew")
		return idleStuck
	}
	return idleFine
}
