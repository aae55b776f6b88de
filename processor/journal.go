package processor

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/pelm"
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

// Kinds of a journal entry's effect on its memory.
const (
	effectNone   = 0 // the filter decided (and perhaps refused) without storing
	effectStore  = 1
	effectForget = 2
)

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

// encodeJournal writes the record of the batch's n effectful slots.
func (p *Processor) encodeJournal(e *recordEncoder, n int) []byte {
	enc := e.start()
	e.check(enc.EncodeMapLen(1))
	e.check(enc.EncodeString("e"))
	e.check(enc.EncodeArrayLen(n))
	for i := range p.slots {
		s := &p.slots[i]
		if !s.effectful() {
			continue
		}
		o := &s.out
		kind, id, vec := effectNone, "", []byte(nil)
		switch {
		case s.storeOp >= 0:
			kind, id = effectStore, o.id
			s.vecLE = appendVector(s.vecLE[:0], s.req.Vector)
			vec = s.vecLE
		case s.forgetOp >= 0:
			kind, id = effectForget, o.id
		}
		e.check(enc.EncodeMapLen(15))
		e.u64("s", o.seq)
		e.str("m", o.memory)
		e.u64("k", uint64(kind))
		e.check(enc.EncodeString("d"))
		e.check(enc.EncodeBool(o.decided))
		e.f64("t", s.filterAfter.Threshold)
		e.f64("ema", s.filterAfter.EMA)
		e.str("id", id)
		e.bin("v", vec)
		e.f64("p", s.req.Phase)
		e.f64("c", s.req.Confidence)
		e.bin("mt", s.meta)
		e.bin("r", s.body)
		e.str("rs", s.subject)
		e.str("rc", o.contentType())
		e.str("ri", o.reqID)
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
// it applies to the memories (restored from the per-item state up to that
// mark) and queues for materialising again. It returns how many entries
// it applied.
func (p *Processor) replayJournal(ctx context.Context, call func() context.Context, mems map[string]*restoring) (int, error) {
	var (
		buf      []byte
		want     = 1 // the part expected next
		first    uint64
		replayed int
	)
	err := p.readStream(ctx, call, JournalStream, p.journal.subject, func(msg jetstream.Msg) error {
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
		k, err := p.replayRecord(&rec, first, md.Sequence.Stream, mems)
		replayed += k
		return err
	})
	return replayed, err
}

// replayRecord restores one journal record.
func (p *Processor) replayRecord(rec *journalRecord, first, last uint64, mems map[string]*restoring) (int, error) {
	jr := &journalRec{first: first, last: last, entries: len(rec.Entries)}
	p.jrecs = append(p.jrecs, jr)
	replayed := 0
	var res [1]pelm.Result
	for i := range rec.Entries {
		en := &rec.Entries[i]
		p.done[en.Seq] = &doneEntry{seq: en.Seq, memory: en.Memory, subject: en.Subject, ctype: en.CType, reqID: en.ReqID,
			body: en.Result, rec: jr}
		jr.unconfirmed++
		if p.matMark.covers(last, i) {
			continue
		}
		m, err := p.restoredMemory(en.Memory, mems)
		if err != nil {
			return replayed, err
		}
		ef := effect{m: m, seq: en.Seq, decided: en.Decided, filter: filterRecord{Threshold: en.Threshold, EMA: en.EMA, Seq: en.Seq}}
		switch en.Kind {
		case effectStore:
			vec, err := vectorFrom(en.Vector, p.dim)
			if err != nil {
				return replayed, fmt.Errorf("memory %q was journalled with another dimension than --dim %d: %w", en.Memory, p.dim, err)
			}
			m.mem.Apply([]pelm.Op{{Kind: pelm.OpStore, ID: en.ID, Vector: vec, Phase: en.Phase, Confidence: en.Confidence, Meta: en.Meta}}, res[:])
			p.item = itemRecord{ID: en.ID, Vector: en.Vector, Phase: en.Phase, Confidence: en.Confidence, Meta: en.Meta, Seq: en.Seq}
			ef.store = &p.item
			ef.evicted, ef.hasEvict = res[0].Evicted, res[0].HasEvicted
		case effectForget:
			m.mem.Apply([]pelm.Op{{Kind: pelm.OpForget, ID: en.ID}}, res[:])
			ef.forgot, ef.found = en.ID, res[0].Found
		}
		if en.Decided {
			m.filter.SetState(filter.State{Threshold: en.Threshold, EMA: en.EMA})
		}
		p.queueEffect(&ef, journalMark{Record: last, Entries: i + 1})
		replayed++
	}
	return replayed, nil
}
