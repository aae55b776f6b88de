package durable

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"
)

// Marker records, in the state stream, what a recovery is running, so that
// a request that kills the processor every time it runs (a poison request)
// is found and set aside instead of killing it forever: JetStream cannot
// count these attempts, since recovered requests are read back rather than
// redelivered.
type Marker struct {
	From     uint64 `msgpack:"from"`     // first pending request when the recovery began; 0: none running
	Upto     uint64 `msgpack:"upto"`     // the last request the recovery covers
	Seq      uint64 `msgpack:"seq"`      // the request being run alone, in isolation mode
	Attempts int    `msgpack:"attempts"` // how often Seq has been run alone
}

func (s *Store) markerSubject() string { return s.part.marker }

// ReadMarker returns the recovery marker; the zero Marker when there is
// none.
func (s *Store) ReadMarker(ctx context.Context) (Marker, error) {
	var m Marker
	st, err := s.js.Stream(ctx, StateStream)
	if err != nil {
		return m, err
	}
	raw, err := st.GetLastMsgForSubject(ctx, s.markerSubject())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	return m, msgpack.Unmarshal(raw.Data, &m)
}

// WriteMarker stores m durably.
func (s *Store) WriteMarker(ctx context.Context, m Marker) error {
	msg := &nats.Msg{Subject: s.markerSubject(), Data: encodeRecord(m), Header: nats.Header{}}
	s.stateFenced(msg.Header)
	_, err := s.js.PublishMsg(ctx, msg)
	return s.checkFenced(err)
}
