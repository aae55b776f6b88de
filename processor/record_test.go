package processor

import (
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestRecordEncoderRoundTrip checks that the hand-written state records
// decode, through msgpack's reflection as a restore reads them, to what
// was encoded, with and without a meta.
func TestRecordEncoderRoundTrip(t *testing.T) {
	var e recordEncoder
	items := []itemRecord{
		{ID: "a", Vector: []byte{1, 2, 3, 4}, Phase: 0.25, Confidence: 1, Seq: 7},
		{ID: "é\x00b", Vector: []byte{0, 0, 128, 63}, Phase: 1, Confidence: 0.5, Meta: []byte{1, 'x'}, Seq: 1 << 40},
	}
	for _, want := range items {
		var got itemRecord
		if err := msgpack.Unmarshal(e.item(&want), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("item round trip:\n got %+v\nwant %+v", got, want)
		}
	}
	f := filterRecord{Threshold: 0.65, EMA: 0.7123, Seq: 99}
	var gf filterRecord
	if err := msgpack.Unmarshal(e.filter(&f), &gf); err != nil {
		t.Fatal(err)
	}
	if gf != f {
		t.Errorf("filter round trip: got %+v, want %+v", gf, f)
	}
}

// TestRecordEncoderAllocs: once its buffer has grown, encoding a store's
// record allocates nothing.
func TestRecordEncoderAllocs(t *testing.T) {
	var e recordEncoder
	r := itemRecord{ID: "a", Vector: make([]byte, 1536), Phase: 0.5, Confidence: 1, Seq: 7}
	e.item(&r)
	if n := testing.AllocsPerRun(100, func() { e.item(&r) }); n != 0 {
		t.Errorf("encoding an item record allocates %v times", n)
	}
}

// TestJournalRoundTrip checks the hand-written journal record the same way:
// the entries a restore decodes are the batch's effectful requests, in
// order, with every field as encoded; a retrieve leaves no entry.
func TestJournalRoundTrip(t *testing.T) {
	p := &Processor{slots: make([]slot, 4)}
	store, retrieve, forget, refused := &p.slots[0], &p.slots[1], &p.slots[2], &p.slots[3]
	*store = slot{applied: true, storeOp: 0, forgetOp: -1, meta: []byte{1, 'm'}, body: []byte("r1"), subject: "pelm.res.m.store"}
	store.out = outcome{seq: 7, memory: "m", id: "a", decided: true, reqID: "req-7", ctype: "application/json"}
	store.req = Request{Vector: []float32{1, -2.5}, Phase: 0.25, Confidence: 0.75}
	store.filterAfter.Threshold, store.filterAfter.EMA = 0.55, 0.6
	*retrieve = slot{storeOp: -1, forgetOp: -1}
	*forget = slot{applied: true, storeOp: -1, forgetOp: 0, body: []byte("r3"), subject: "app.results.x"}
	forget.out = outcome{seq: 9, memory: "n", id: "b"}
	*refused = slot{applied: true, storeOp: -1, forgetOp: -1, body: []byte("r4"), subject: "pelm.res.m.process"}
	refused.out = outcome{seq: 10, memory: "m", decided: true}
	refused.filterAfter.Threshold, refused.filterAfter.EMA = 0.6, 0.4

	var rec journalRecord
	if err := msgpack.Unmarshal(p.encodeJournal(&recordEncoder{}, 3), &rec); err != nil {
		t.Fatal(err)
	}
	want := []journalEntry{
		{Seq: 7, Memory: "m", Kind: effectStore, Decided: true, Threshold: 0.55, EMA: 0.6, ID: "a",
			Vector: appendVector(nil, []float32{1, -2.5}), Phase: 0.25, Confidence: 0.75, Meta: []byte{1, 'm'},
			Result: []byte("r1"), Subject: "pelm.res.m.store", CType: "application/json", ReqID: "req-7"},
		{Seq: 9, Memory: "n", Kind: effectForget, ID: "b", Result: []byte("r3"), Subject: "app.results.x", CType: "application/msgpack"},
		{Seq: 10, Memory: "m", Kind: effectNone, Decided: true, Threshold: 0.6, EMA: 0.4,
			Result: []byte("r4"), Subject: "pelm.res.m.process", CType: "application/msgpack"},
	}
	if !reflect.DeepEqual(rec.Entries, want) {
		t.Errorf("journal round trip:\n got %+v\nwant %+v", rec.Entries, want)
	}
}
