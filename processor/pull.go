package processor

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// idleCheck is how long the pull loop waits for a message before it checks
// that its consumer still exists.
const idleCheck = 5 * time.Second

// pull moves messages from the iterator to the batcher until the iterator
// is closed.
func (p *Processor) pull(cons jetstream.Consumer, it jetstream.MessagesContext, in chan<- jetstream.Msg) {
	defer close(in)
	missing := 0 // consecutive checks that found no consumer
	idle := time.Duration(0)
	wait := jetstream.NextMaxWait(idleTick) // built once: it allocates
	for {
		msg, err := it.Next(wait)
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat) {
			// Idle: let the batch loop do its housekeeping.
			select {
			case in <- tick{}:
			default:
			}
			if idle += idleTick; idle < idleCheck && errors.Is(err, nats.ErrTimeout) {
				continue
			}
			idle = 0
			// Idle a while, or the server went quiet: make sure there is
			// still a consumer to wait on. A deletion is not always
			// announced to a waiting iterator.
			ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
			_, err := cons.Info(ctx)
			cancel()
			if !errors.Is(err, jetstream.ErrConsumerNotFound) {
				missing = 0
				continue
			}
			// Twice in a row, a check apart: a server that has just
			// restarted may not have loaded its consumers yet.
			if missing++; missing == 2 {
				p.pullErr = err
				return
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

// idleTick is how often an idle pull loop hands the batch loop a tick.
const idleTick = 250 * time.Millisecond

// tick is a message that is none: the batch loop, handed one while idle,
// confirms acks and materialises state (handle.go).
type tick struct{ jetstream.Msg }
