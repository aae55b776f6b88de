package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/wire"
)

// recoveredMsg is a request that an earlier processor pulled and never
// acknowledged (it crashed), read back from the requests stream by
// sequence. Finishing it deletes it from the work-queue stream, which is
// what an ack does; a Nak leaves it for JetStream to redeliver.
type recoveredMsg struct {
	raw *jetstream.RawStreamMsg
	st  jetstream.Stream
}

func (m *recoveredMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Stream: m.raw.Sequence},
		NumDelivered: 2, // it was delivered once, to the processor that died
		Timestamp:    m.raw.Time,
		Stream:       wire.RequestsStream,
		Consumer:     ConsumerName,
	}, nil
}
func (m *recoveredMsg) Data() []byte         { return m.raw.Data }
func (m *recoveredMsg) Headers() nats.Header { return m.raw.Header }
func (m *recoveredMsg) Subject() string      { return m.raw.Subject }
func (m *recoveredMsg) Reply() string        { return "" }
func (m *recoveredMsg) Ack() error           { return m.finish() }
func (m *recoveredMsg) DoubleAck(context.Context) error {
	return m.finish()
}
func (m *recoveredMsg) Nak() error                       { return nil }
func (m *recoveredMsg) NakWithDelay(time.Duration) error { return nil }
func (m *recoveredMsg) InProgress() error                { return nil }
func (m *recoveredMsg) Term() error                      { return m.finish() }
func (m *recoveredMsg) TermWithReason(string) error      { return m.finish() }

func (m *recoveredMsg) finish() error {
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	err := m.st.DeleteMsg(ctx, m.raw.Sequence)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	return err
}

// recoveryTimeout bounds a recovery as a whole.
const recoveryTimeout = 2 * time.Minute

// recoverPending runs, before anything new is pulled, the requests that a
// processor which died had pulled and not acknowledged. Without this
// JetStream would redeliver them only after AckWait, behind newer requests;
// with it they run first, in stream order, and those whose effects were
// already durable replay their results.
//
// When the previous recovery itself died, the requests run one at a time,
// each announced in the marker first; one that has died MaxDeliver times
// goes to the DLQ with an internal error.
func (p *Processor) recoverPending(ctx context.Context, cons jetstream.Consumer, b func([]jetstream.Msg)) error {
	ci, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("%w: consumer info: %w", ErrSetup, err)
	}
	marker, err := p.store.ReadMarker(ctx)
	if err != nil {
		return fmt.Errorf("%w: recovery marker: %w", ErrSetup, err)
	}
	if ci.NumAckPending == 0 {
		if marker.From != 0 {
			return p.store.WriteMarker(ctx, durable.Marker{})
		}
		return nil
	}
	st, err := p.js.Stream(ctx, wire.RequestsStream)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	var pending []*jetstream.RawStreamMsg
	for seq := ci.AckFloor.Stream + 1; seq <= ci.Delivered.Stream; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // acknowledged
		}
		if err != nil {
			return fmt.Errorf("%w: recover request %d: %w", ErrSetup, seq, err)
		}
		pending = append(pending, raw)
	}
	if len(pending) == 0 {
		return p.store.WriteMarker(ctx, durable.Marker{})
	}
	isolate := false
	for _, raw := range pending {
		isolate = isolate || raw.Sequence == marker.From
	}
	if !isolate {
		if err := p.store.WriteMarker(ctx, durable.Marker{From: pending[0].Sequence}); err != nil {
			return fmt.Errorf("%w: recovery marker: %w", ErrSetup, err)
		}
		var batch []jetstream.Msg
		for _, raw := range pending {
			batch = append(batch, &recoveredMsg{raw: raw, st: st})
			if len(batch) == p.cfg.Batch.MaxSize {
				b(batch)
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			b(batch)
		}
	} else {
		for _, raw := range pending {
			attempts := 1
			if raw.Sequence == marker.Seq {
				attempts = marker.Attempts + 1
			}
			if attempts > p.cfg.MaxDeliver {
				reason := wire.Errorf(wire.CodeInternal, "the processor died %d times running this request", attempts-1)
				if err := p.deadLetterRaw(ctx, st, raw, reason); err != nil {
					return fmt.Errorf("%w: dead-letter request %d: %w", ErrSetup, raw.Sequence, err)
				}
				continue
			}
			if err := p.store.WriteMarker(ctx, durable.Marker{From: raw.Sequence, Seq: raw.Sequence, Attempts: attempts}); err != nil {
				return fmt.Errorf("%w: recovery marker: %w", ErrSetup, err)
			}
			b([]jetstream.Msg{&recoveredMsg{raw: raw, st: st}})
		}
	}
	p.log.Info().Int("requests", len(pending)).Bool("one_at_a_time", isolate).
		Msg("requests of a processor that stopped unexpectedly recovered")
	return p.store.WriteMarker(ctx, durable.Marker{})
}
