package durable

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
	"github.com/vmihailenco/msgpack/v5"
)

// The journal is the batch loop's write-ahead log: one record per batch,
// holding every effectful request's effects and result, written as one
// ordinary publish (a few parts when it exceeds the server's payload
// limit) to the stream PELM_JOURNAL. That is the only write a request
// waits for: a record costs one message where an atomic batch of the
// per-item state costs a fixed few milliseconds more (BenchmarkStateCommit).
// The per-item layout of PELM_STATE is brought up to date behind it
// (materialize.go) and the journal is purged behind that.
const (
	JournalStream = "PELM_JOURNAL"

	hdrPart = "Pelm-Part" // "i/n": part i of a record of n parts
)

func journalStreamConfig(prefix string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:      JournalStream,
		Subjects:  []string{prefix + ".journal"},
		Retention: jetstream.LimitsPolicy,
		Storage:   jetstream.FileStorage,
		Discard:   jetstream.DiscardOld,
	}
}

// journalEntry is one effectful request as the journal holds it.
type journalEntry struct {
	Seq       uint64  `msgpack:"s"`
	Memory    string  `msgpack:"m"`
	Kind      uint8   `msgpack:"k"`
	Decided   bool    `msgpack:"d"`   // the filter decided: Threshold and EMA are its state after
	Threshold float64 `msgpack:"t"`   //
	EMA       float64 `msgpack:"ema"` //

	ID         string  `msgpack:"id"`
	Vector     []byte  `msgpack:"v"` // a store's vector as the request sent it, little-endian float32
	Phase      float64 `msgpack:"p"`
	Confidence float64 `msgpack:"c"`
	Meta       []byte  `msgpack:"mt"` // tagged, see metaTag

	Result  []byte `msgpack:"r"`
	Subject string `msgpack:"rs"`
	CType   string `msgpack:"rc"`
	ReqID   string `msgpack:"ri"`
}

type journalRecord struct {
	Entries []journalEntry `msgpack:"e"`
}

// journalRec is what the processor remembers of a record while it is in
// the journal: where it lies and whether it may be purged.
type journalRec struct {
	first, last uint64 // stream sequences of its first and last parts
	entries     int
	unconfirmed int // its results whose requests may still come back
}

// journalMark is a position in the journal: the first entries of the
// record whose last part is at sequence record. The per-item state holds
// exactly the effects of everything before it.
type journalMark struct {
	Record  uint64 `msgpack:"r"`
	Entries int    `msgpack:"n"`
}

// covers reports whether the entry at index i of the record ending at last
// is before the mark.
func (m journalMark) covers(last uint64, i int) bool {
	return last < m.Record || (last == m.Record && i < m.Entries)
}

// encodeJournal writes the record of a batch's entries, converting each
// store's vector to little-endian bytes once (s.vecs[i]), for the journal
// and for the per-item state.
func (s *Store) encodeJournal(entries []Entry) []byte {
	e := &s.jenc
	enc := e.start()
	e.check(enc.EncodeMapLen(1))
	e.check(enc.EncodeString("e"))
	e.check(enc.EncodeArrayLen(len(entries)))
	for len(s.vecs) < len(entries) {
		s.vecs = append(s.vecs, nil)
	}
	for i := range entries {
		en := &entries[i]
		s.vecs[i] = s.vecs[i][:0]
		if en.Kind == KindStore {
			s.vecs[i] = appendVector(s.vecs[i], en.Vector)
		}
		e.check(enc.EncodeMapLen(15))
		e.u64("s", en.Seq)
		e.str("m", en.Memory)
		e.u64("k", uint64(en.Kind))
		e.check(enc.EncodeString("d"))
		e.check(enc.EncodeBool(en.Decided))
		e.f64("t", en.Filter.Threshold)
		e.f64("ema", en.Filter.EMA)
		e.str("id", en.ID)
		e.bin("v", s.vecs[i])
		e.f64("p", en.Phase)
		e.f64("c", en.Confidence)
		e.bin("mt", en.Meta)
		e.bin("r", en.Result.Body)
		e.str("rs", en.Result.Subject)
		e.str("rc", en.Result.ContentType)
		e.str("ri", en.Result.ReqID)
	}
	return e.done()
}

// journalWriter publishes records.
type journalWriter struct {
	js      jetstream.JetStream
	subject string
	partMax int
	futs    []jetstream.PubAckFuture
}

// write publishes data as one record and waits until the stream has stored
// all of it; it returns the sequences of the first and last parts.
func (w *journalWriter) write(ctx context.Context, data []byte) (first, last uint64, err error) {
	parts := max(1, (len(data)+w.partMax-1)/w.partMax)
	w.futs = w.futs[:0]
	for i := range parts {
		chunk := data[i*w.partMax : min(len(data), (i+1)*w.partMax)]
		// A message of its own per part: nats.go keeps it until the ack,
		// and sends it again on a retry.
		msg := &nats.Msg{Subject: w.subject, Data: chunk, Header: nats.Header{hdrPart: {strconv.Itoa(i+1) + "/" + strconv.Itoa(parts)}}}
		f, err := w.js.PublishMsgAsync(msg)
		if err != nil {
			return 0, 0, fmt.Errorf("processor: journal: %w", err)
		}
		w.futs = append(w.futs, f)
	}
	for i, f := range w.futs {
		select {
		case ack := <-f.Ok():
			if i == 0 {
				first = ack.Sequence
			}
			last = ack.Sequence
		case err := <-f.Err():
			return 0, 0, fmt.Errorf("processor: journal: %w", err)
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("processor: journal: %w", ctx.Err())
		}
	}
	return first, last, nil
}

// parsePart reads a Pelm-Part header.
func parsePart(h string) (i, n int, ok bool) {
	a, b, found := strings.Cut(h, "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	return i, n, err1 == nil && err2 == nil && i >= 1 && i <= n
}

// replayJournal reads the journal back: the results of every record still
// there, and the effects of the entries past the materialised mark, which
// it replays on the memories (restored from the per-item state up to that
// mark) and queues for materialising again. It returns how many entries
// it replayed.
func (s *Store) replayJournal(ctx context.Context, call func() context.Context, a Applier) (int, error) {
	var (
		buf      []byte
		want     = 1 // the part expected next
		first    uint64
		replayed int
	)
	err := s.readStream(ctx, call, JournalStream, s.journal.subject, func(msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		i, n, ok := parsePart(msg.Headers().Get(hdrPart))
		if !ok {
			return fmt.Errorf("journal message %d: bad %s header %q", md.Sequence.Stream, hdrPart, msg.Headers().Get(hdrPart))
		}
		if i != want {
			// The rest of a record cut short by a crash: its requests were
			// never acknowledged and come back. Start afresh at a first part.
			buf, want = buf[:0], 1
			if i != 1 {
				return nil
			}
		}
		if i == 1 {
			buf, first = buf[:0], md.Sequence.Stream
		}
		buf = append(buf, msg.Data()...)
		if i < n {
			want = i + 1
			return nil
		}
		want = 1
		var rec journalRecord
		if err := msgpack.Unmarshal(buf, &rec); err != nil {
			return fmt.Errorf("journal record at %d: %w", first, err)
		}
		k, err := s.replayRecord(&rec, first, md.Sequence.Stream, a)
		replayed += k
		return err
	})
	return replayed, err
}

// replayRecord restores one journal record.
func (s *Store) replayRecord(rec *journalRecord, first, last uint64, a Applier) (int, error) {
	jr := &journalRec{first: first, last: last, entries: len(rec.Entries)}
	s.jrecs = append(s.jrecs, jr)
	replayed := 0
	for i := range rec.Entries {
		je := &rec.Entries[i]
		s.done[je.Seq] = &doneEntry{seq: je.Seq, rec: jr, Result: Result{Subject: je.Subject, ContentType: je.CType, ReqID: je.ReqID, Body: je.Result}}
		jr.unconfirmed++
		if s.matMark.covers(last, i) {
			continue
		}
		en := Entry{Seq: je.Seq, Memory: je.Memory, Decided: je.Decided, Filter: filter.State{Threshold: je.Threshold, EMA: je.EMA},
			Kind: Kind(je.Kind), ID: je.ID, Phase: je.Phase, Confidence: je.Confidence, Meta: je.Meta}
		if en.Kind == KindStore {
			en.Vector = vectorFrom(je.Vector)
		}
		if err := a.Replay(je.Memory, &en); err != nil {
			return replayed, fmt.Errorf("journal entry of request %d: %w", je.Seq, err)
		}
		s.queue(&en, je.Vector, journalMark{Record: last, Entries: i + 1})
		replayed++
	}
	return replayed, nil
}
