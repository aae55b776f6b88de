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
		Consumer:     ConsumerName, // not the name of the partition's consumer: nothing reads it
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

// recoverPending runs first, in stream order, the partition's requests that
// a previous owner may have held: those from..upto still in the stream
// (from its consumers), those of a recovery that died (the marker), and,
// in a partition of memories, the requests stored before the stream
// partitioned them. Each is run as if redelivered, and removed from the
// stream once answered. A recovery that died is run again one request at
// a time, and a request that died --max-deliver times goes to the DLQ.
func (pt *partition) recoverPending(calls *apiCalls, st jetstream.Stream, from, upto uint64, b func([]jetstream.Msg)) error {
	marker, err := pt.store.ReadMarker(calls.ctx())
	if err != nil {
		return fmt.Errorf("%w: recovery marker: %w", ErrSetup, err)
	}
	if marker.From != 0 {
		if from == 0 || marker.From < from {
			from = marker.From
		}
		upto = max(upto, marker.Upto)
	}
	var pending []*jetstream.RawStreamMsg
	if from != 0 && from <= upto {
		if pending, err = pt.scan(calls, st, from, upto, pt.subjects+">", nil); err != nil {
			return err
		}
	}
	if !pt.catchAll() {
		legacy, err := pt.scan(calls, st, 1, 0, pt.reqPrefix+"*.*", func(subject string) bool { return pt.owns(pt.route(subject).Memory) })
		if err != nil {
			return err
		}
		pending = mergeSeq(pending, legacy)
	}
	if len(pending) == 0 {
		if marker.From != 0 {
			return pt.store.WriteMarker(calls.ctx(), durable.Marker{})
		}
		return nil
	}
	isolate := false
	for _, raw := range pending {
		isolate = isolate || raw.Sequence == marker.From
	}
	if !isolate {
		m := durable.Marker{From: pending[0].Sequence, Upto: pending[len(pending)-1].Sequence}
		if err := pt.store.WriteMarker(calls.ctx(), m); err != nil {
			return fmt.Errorf("%w: recovery marker: %w", ErrSetup, err)
		}
		var batch []jetstream.Msg
		for _, raw := range pending {
			batch = append(batch, &recoveredMsg{raw: raw, st: st})
			if len(batch) == pt.cfg.Batch.MaxSize {
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
			if attempts > pt.cfg.MaxDeliver {
				reason := wire.Errorf(wire.CodeInternal, "the processor died %d times running this request", attempts-1)
				if err := pt.deadLetterRaw(calls.ctx(), st, raw, reason); err != nil {
					return fmt.Errorf("%w: dead-letter request %d: %w", ErrSetup, raw.Sequence, err)
				}
				continue
			}
			m := durable.Marker{From: raw.Sequence, Upto: pending[len(pending)-1].Sequence, Seq: raw.Sequence, Attempts: attempts}
			if err := pt.store.WriteMarker(calls.ctx(), m); err != nil {
				return fmt.Errorf("%w: recovery marker: %w", ErrSetup, err)
			}
			b([]jetstream.Msg{&recoveredMsg{raw: raw, st: st}})
		}
	}
	pt.log.Info().Int("partition", pt.id).Int("requests", len(pending)).Bool("one_at_a_time", isolate).
		Msg("requests of a processor that stopped unexpectedly recovered")
	return pt.store.WriteMarker(calls.ctx(), durable.Marker{})
}

// scan returns the messages of the requests stream on subject from seq
// from to upto (0: to the end), those keep accepts (nil: all).
func (pt *partition) scan(calls *apiCalls, st jetstream.Stream, from, upto uint64, subject string, keep func(string) bool) ([]*jetstream.RawStreamMsg, error) {
	var out []*jetstream.RawStreamMsg
	for seq := from; upto == 0 || seq <= upto; {
		raw, err := st.GetMsg(calls.ctx(), seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: recover requests from %d: %w", ErrSetup, seq, err)
		}
		if upto != 0 && raw.Sequence > upto {
			break
		}
		if keep == nil || keep(raw.Subject) {
			out = append(out, raw)
		}
		seq = raw.Sequence + 1
	}
	return out, nil
}

// mergeSeq merges two lists of messages sorted by stream sequence.
func mergeSeq(a, b []*jetstream.RawStreamMsg) []*jetstream.RawStreamMsg {
	if len(b) == 0 {
		return a
	}
	out := make([]*jetstream.RawStreamMsg, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].Sequence < b[0].Sequence {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}
