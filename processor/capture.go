package processor

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/wire"
)

// captures knows which subjects a stream captures. A result whose subject
// a stream captures goes out as a JetStream publish, and its request is
// acknowledged only once the stream has stored it (its PubAck): a core
// publish and a flush prove only that the server read the result, not that
// the stream, which ingests through a queue of its own, stored it. Results
// nobody stores stay core publishes, with no round trip each.
//
// The subjects of every stream are listed at start, again when JetStream
// announces that a stream was created, updated or deleted, and every
// captureRefresh in case an announcement was missed; each partition's
// batch loop matches subjects against them, caching what it found per
// subject (captureCache).
type captures struct {
	js       jetstream.JetStream
	patterns atomic.Pointer[[]string] // the subjects of every stream
	gen      atomic.Uint64            // bumped when patterns change
	changed  chan struct{}            // a stream changed: list them again
}

// captureCache is one batch loop's memory of which subjects are captured.
type captureCache struct {
	seen  uint64 // captures.gen the cache was made from
	cache map[string]bool
}

const (
	captureRefresh  = 30 * time.Second
	captureCacheMax = 4096 // subjects cached; per-request inboxes would grow it forever
)

func newCaptures(js jetstream.JetStream) *captures {
	c := &captures{js: js, changed: make(chan struct{}, 1)}
	c.patterns.Store(&[]string{})
	return c
}

// refresh lists the streams' subjects.
func (c *captures) refresh(ctx context.Context) error {
	var subjects []string
	l := c.js.ListStreams(ctx)
	for info := range l.Info() {
		subjects = append(subjects, info.Config.Subjects...)
	}
	if err := l.Err(); err != nil {
		return err
	}
	c.patterns.Store(&subjects)
	c.gen.Add(1)
	return nil
}

// watch subscribes to JetStream's stream advisories.
func (c *captures) watch(nc *nats.Conn) (*nats.Subscription, error) {
	return nc.Subscribe("$JS.EVENT.ADVISORY.STREAM.*.*", func(m *nats.Msg) {
		select {
		case c.changed <- struct{}{}:
		default:
		}
	})
}

// loop refreshes when a stream changes and every captureRefresh, until ctx
// is done. A refresh that fails keeps the last list.
func (c *captures) loop(ctx context.Context, log func(error)) {
	t := time.NewTicker(captureRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.changed:
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, apiTimeout)
		if err := c.refresh(rctx); err != nil && ctx.Err() == nil {
			log(err)
		}
		cancel()
	}
}

// captured reports whether a stream captures subject, through the
// cache of the calling batch loop.
func (c *captures) captured(cc *captureCache, subject string) bool {
	if g := c.gen.Load(); g != cc.seen || len(cc.cache) >= captureCacheMax || cc.cache == nil {
		if cc.cache == nil {
			cc.cache = map[string]bool{}
		}
		clear(cc.cache)
		cc.seen = g
	}
	if v, ok := cc.cache[subject]; ok {
		return v
	}
	v := c.match(subject)
	cc.cache[subject] = v
	return v
}

// match reports whether a stream captures subject, without the cache:
// safe on any goroutine.
func (c *captures) match(subject string) bool {
	for _, p := range *c.patterns.Load() {
		if wire.SubjectMatch(p, subject) {
			return true
		}
	}
	return false
}
