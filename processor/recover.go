package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
		Stream:       RequestsStream,
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

// recoverPending runs, before anything new is pulled, the requests that a
// processor which died had pulled and not acknowledged. Without this
// JetStream would redeliver them only after AckWait, behind newer requests;
// with it they run first, in stream order, and those whose effects were
// already durable replay their results.
func (p *Processor) recoverPending(ctx context.Context, cons jetstream.Consumer, b func([]jetstream.Msg)) error {
	ci, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("%w: consumer info: %w", ErrSetup, err)
	}
	if ci.NumAckPending == 0 {
		return nil
	}
	st, err := p.js.Stream(ctx, RequestsStream)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSetup, err)
	}
	var batch []jetstream.Msg
	n := 0
	for seq := ci.AckFloor.Stream + 1; seq <= ci.Delivered.Stream; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // acknowledged
		}
		if err != nil {
			return fmt.Errorf("%w: recover request %d: %w", ErrSetup, seq, err)
		}
		batch = append(batch, &recoveredMsg{raw: raw, st: st})
		if len(batch) == p.cfg.Batch.MaxSize {
			b(batch)
			n += len(batch)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		b(batch)
		n += len(batch)
	}
	p.log.Info().Int("requests", n).Msg("requests of a processor that stopped unexpectedly recovered")
	return nil
}
