package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/wire"
)

// ErrLegacy is returned by Run when the prefix was served by a version
// before partitions whose processor is still running, or left work that
// only it can finish. Stop it with SIGTERM (or, if it died, start it once
// more and then stop it so) and start this version again.
var ErrLegacy = errors.New("processor: a processor of an earlier version is running or left unfinished work; stop it with SIGTERM first")

// transform is the requests stream's subject transform for n partitions.
func (p *Processor) transform(n int) *jetstream.SubjectTransformConfig {
	return &jetstream.SubjectTransformConfig{
		Source:      p.reqPrefix + "*.*",
		Destination: p.partPrefix + "{{partition(" + strconv.Itoa(n) + ",1)}}.{{wildcard(1)}}.{{wildcard(2)}}",
	}
}

// partitionsOf reads the partition count from a requests stream's subject
// transform, if it is ours.
func (p *Processor) partitionsOf(tr *jetstream.SubjectTransformConfig) (int, bool) {
	if tr == nil || tr.Source != p.reqPrefix+"*.*" {
		return 0, false
	}
	rest, ok := strings.CutPrefix(tr.Destination, p.partPrefix+"{{partition(")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, ",")
	n, err := strconv.Atoi(num)
	return n, ok && err == nil && n >= 1
}

// migrate reads the partition count from the requests stream and, on a
// stream made by a version before partitions, takes the prefix over: once
// it knows that version's processor stopped and left nothing unfinished,
// it gives the stream its transform and deletes that processor's
// consumer. Requests it stored unpartitioned are run first by the owners
// of their partitions (recovery.go).
func (p *Processor) migrate(ctx context.Context) error {
	st, err := p.js.Stream(ctx, wire.RequestsStream)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	cfg := st.CachedInfo().Config
	if n, ok := p.partitionsOf(cfg.SubjectTransform); ok {
		if n != p.cfg.Partitions {
			p.log.Info().Int("partitions", n).Msg("the requests stream keeps the partition count it was made with")
		}
		p.parts = n
		return nil
	}
	if cfg.SubjectTransform != nil {
		return fmt.Errorf("%w: stream %s has a subject transform pelm did not make (%s to %s)", ErrSetup,
			wire.RequestsStream, cfg.SubjectTransform.Source, cfg.SubjectTransform.Destination)
	}
	if err := p.legacyStopped(ctx, st); err != nil {
		return err
	}
	if found, err := durable.MigrateLegacy(ctx, p.nc, p.js, p.cfg.Prefix); errors.Is(err, durable.ErrLegacy) {
		return fmt.Errorf("%w: %w", ErrLegacy, err)
	} else if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	} else if found {
		p.log.Info().Msg("took over the journal of an earlier version")
	}
	cfg.SubjectTransform = p.transform(p.cfg.Partitions)
	if _, err := p.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("%w: partition stream %s: %w", ErrSetup, wire.RequestsStream, err)
	}
	if err := st.DeleteConsumer(ctx, ConsumerName); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("%w: delete consumer %s: %w", ErrSetup, ConsumerName, err)
	}
	p.parts = p.cfg.Partitions
	p.log.Info().Int("partitions", p.parts).Msg("requests stream partitioned")
	return nil
}

// legacyStopped checks that no processor of an earlier version holds
// requests or waits for them on its consumer; pull requests of one just
// stopped may linger for their expiry.
func (p *Processor) legacyStopped(ctx context.Context, st jetstream.Stream) error {
	deadline := time.Now().Add(2 * pullExpiry)
	for {
		c, err := st.Consumer(ctx, ConsumerName)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: consumer %s: %w", ErrSetup, ConsumerName, err)
		}
		ci := c.CachedInfo()
		switch {
		case ci.NumAckPending > 0:
			return fmt.Errorf("%w: it holds %d requests unacknowledged", ErrLegacy, ci.NumAckPending)
		case ci.NumWaiting == 0:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%w: it is pulling requests", ErrLegacy)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
