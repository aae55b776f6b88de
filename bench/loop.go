package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/wire"
)

// begin makes st the step in progress.
func (r *runner) begin(st *step) {
	st.start = time.Now().Add(time.Millisecond)
	r.cur.Store(st)
	r.prog.begin(st)
}

// end closes st once its results are in or its timeout has passed, then
// waits for the stragglers so that the next step starts on an idle system.
func (r *runner) end(ctx context.Context, st *step) {
	// Wait for what was sent: a step that stopped early (aborted, or
	// publishes that failed) would otherwise sit out the rest of its
	// schedule for results of requests that never went.
	deadline := st.lastSend.Add(r.cfg.Timeout)
	if st.rate > 0 && !st.aborted {
		deadline = st.intended(st.n - 1).Add(r.cfg.Timeout)
	}
	sent := st.sent.Load()
	wait(ctx, deadline, func() bool { return st.recv.Load() >= sent })
	st.close()
	if st.rate == 0 {
		st.mu.Lock()
		st.duration = st.lastResult.Sub(st.start)
		st.mu.Unlock()
	}
	// Settle: every request answered, or none for a second, at most
	// settleMax; then what is left is purged.
	last, lastN := time.Now(), st.answered()
	wait(ctx, time.Now().Add(settleMax), func() bool {
		n := st.answered()
		if n != lastN {
			last, lastN = time.Now(), n
		}
		return n >= sent || time.Since(last) > time.Second
	})
	select {
	case <-r.js.PublishAsyncComplete():
	case <-time.After(r.cfg.Timeout):
	case <-ctx.Done():
	}
	if left := sent - st.answered(); left > 0 && ctx.Err() == nil {
		r.purge(st, left)
	}
	r.prog.end(st, st.report(r.cfg.MaxP99))
}

// settleMax bounds the wait for a step's late results.
const settleMax = 30 * time.Second

// purge removes the step's unanswered requests from the system's stream,
// so that the next step does not start behind a backlog. Each purge call
// has its own deadline: a run over many memories purges each one.
func (r *runner) purge(st *step, left int64) {
	name := processorStream
	if st.sys == sysEcho {
		name = EchoStream
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s, err := r.js.Stream(ctx, name)
	cancel()
	var subjects []string
	if err == nil {
		subjects = r.purgeSubjects(st.sys, s.CachedInfo().Config.SubjectTransform != nil)
	}
	for _, subject := range subjects {
		if err != nil {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.Purge(ctx, jetstream.WithPurgeSubject(subject))
		cancel()
	}
	if err != nil {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("purge of %s after a step failed: %v", name, err))
		return
	}
	st.mu.Lock()
	st.purged = left
	st.mu.Unlock()
}

// purgeSubjects are the subjects a system's stream files the load's
// requests under. pelm's stream, with the subject transform that puts each
// memory in its partition, holds pelm.part.<n>.<memory>.<op>; a stream of
// a version before partitions, and the echo's, hold <prefix>.req.<memory>.<op>.
func (r *runner) purgeSubjects(sys system, partitioned bool) []string {
	prefix := r.cfg.Prefix + ".req."
	if sys == sysEcho {
		prefix = r.cfg.EchoPrefix + ".req."
	} else if partitioned {
		prefix = r.cfg.Prefix + ".part.*."
	}
	var out []string
	for _, m := range r.cfg.memoryNames() {
		out = append(out, prefix+m+".>")
	}
	return out
}

// wait polls cond until it holds, deadline passes or ctx is done.
func wait(ctx context.Context, deadline time.Time, cond func() bool) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !cond() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openLoop sends rate requests per second for d, each at its intended
// time whatever happened to the ones before.
func (r *runner) openLoop(ctx context.Context, sys system, kind string, rate float64, d time.Duration) *step {
	n := max(int(math.Round(rate*d.Seconds())), 1)
	r.steps++
	st := newStep(r.steps, sys, kind, rate, n, d)
	r.begin(st)
	idBuf := make([]byte, 0, 48)
	limit := r.abortLimit(rate, d)
	for i := range n {
		if i&31 == 0 {
			if ctx.Err() != nil {
				break
			}
			if st.sent.Load()-st.recv.Load() > limit {
				st.aborted = true
				break
			}
		}
		if wait := time.Until(st.intended(i)); wait > 20*time.Microsecond {
			time.Sleep(wait)
		}
		o := r.w.schedule[i%len(r.w.schedule)]
		bodies := r.w.bodies[o]
		r.publish(ctx, st, r.w.subject(sys, o, i), bodies[i%len(bodies)], r.requestID(idBuf, st.id, i))
	}
	st.lastSend = time.Now()
	r.end(ctx, st)
	return st
}

// abortLimit is how many unanswered requests prove a rate unsustainable.
// With more than rate·(MaxP99 + w) in flight, w = max(MaxP99, d/50), the
// oldest rate·w of them are older than MaxP99 already: at least 2 % of the
// step's requests (and at least MaxP99/d of them), so its p99 is above
// MaxP99 whatever happens next. A floor of two batches keeps slow rates from
// aborting on one batch in hand.
func (r *runner) abortLimit(rate float64, d time.Duration) int64 {
	w := max(r.cfg.MaxP99, d/50)
	return max(int64(rate*(r.cfg.MaxP99+w).Seconds()), int64(2*r.cfg.Batch.MaxSize)+64)
}

// closedLoop sends the preload's n stores, at most Config.Window in
// flight, as fast as results come back.
func (r *runner) closedLoop(ctx context.Context, sys system, n int) (*step, error) {
	r.steps++
	st := newStep(r.steps, sys, KindPreload, 0, n, 0)
	st.window = make(chan struct{}, r.cfg.Window)
	r.begin(st)
	stall := max(r.cfg.Timeout, preloadStall)
	timer := time.NewTimer(stall)
	defer timer.Stop()
	idBuf := make([]byte, 0, 48)
	for i := range n {
		timer.Reset(stall)
		select {
		case st.window <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			st.close()
			return nil, fmt.Errorf("%w: pelm answered %d of %d preload stores, none in the last %v; is it running on %s.req.%s.*, and does --reply-allow admit %s?",
				ErrNoResults, st.recv.Load(), i, stall, r.cfg.Prefix, r.cfg.memoryNames()[0], r.cfg.Inbox)
		}
		st.sentAt[i].Store(int64(time.Since(st.start)))
		r.publish(ctx, st, r.w.subject(sys, opStore, i), r.w.preload[i], r.requestID(idBuf, st.id, i))
	}
	st.lastSend = time.Now()
	r.end(ctx, st) // sets duration: the closed loop's lasts until its last result
	return st, nil
}

// preloadStall is how long the preload waits for a free slot in its window
// before it concludes that nothing answers.
const preloadStall = 30 * time.Second

// processorStream is where pelm's requests are stored.
const processorStream = wire.RequestsStream

// publish sends one request with its id and the run's inbox, retrying
// while nats.go's window of unacknowledged publishes is full.
func (r *runner) publish(ctx context.Context, st *step, subject string, body []byte, id string) {
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{wire.HeaderMsgID: {id}, wire.HeaderReplyTo: {r.inbox}}}
	for {
		_, err := r.js.PublishMsgAsync(msg)
		if err == nil {
			st.sent.Add(1)
			return
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || ctx.Err() != nil {
			st.pubFail.Add(1)
			return
		}
	}
}
