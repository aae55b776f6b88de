package durable

import (
	"reflect"

	"testing"

	"github.com/pelm-dev/pelm/filter"

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
	s := &Store{}
	entries := []Entry{
		{Seq: 7, Memory: "m", Kind: KindStore, Decided: true, Filter: filter.State{Threshold: 0.55, EMA: 0.6}, ID: "a",
			Vector: []float32{1, -2.5}, Phase: 0.25, Confidence: 0.75, Meta: []byte{1, 'm'},
			Result: Result{Body: []byte("r1"), Subject: "pelm.res.m.store", ContentType: "application/json", ReqID: "req-7"}},
		{Seq: 9, Memory: "n", Kind: KindForget, ID: "b", Found: true,
			Result: Result{Body: []byte("r3"), Subject: "app.results.x", ContentType: "application/msgpack"}},
		{Seq: 10, Memory: "m", Kind: KindNone, Decided: true, Filter: filter.State{Threshold: 0.6, EMA: 0.4},
			Result: Result{Body: []byte("r4"), Subject: "pelm.res.m.process", ContentType: "application/msgpack"}},
	}
	var rec journalRecord
	if err := msgpack.Unmarshal(s.encodeJournal(entries), &rec); err != nil {
		t.Fatal(err)
	}
	want := []journalEntry{
		{Seq: 7, Memory: "m", Kind: uint8(KindStore), Decided: true, Threshold: 0.55, EMA: 0.6, ID: "a",
			Vector: appendVector(nil, []float32{1, -2.5}), Phase: 0.25, Confidence: 0.75, Meta: []byte{1, 'm'},
			Result: []byte("r1"), Subject: "pelm.res.m.store", CType: "application/json", ReqID: "req-7"},
		{Seq: 9, Memory: "n", Kind: uint8(KindForget), ID: "b", Result: []byte("r3"), Subject: "app.results.x", CType: "application/msgpack"},
		{Seq: 10, Memory: "m", Kind: uint8(KindNone), Decided: true, Threshold: 0.6, EMA: 0.4,
			Result: []byte("r4"), Subject: "pelm.res.m.process", CType: "application/msgpack"},
	}
	if !reflect.DeepEqual(rec.Entries, want) {
		t.Errorf("journal round trip:\n got %+v\nwant %+v", rec.Entries, want)
	}
	if got := vectorFrom(s.vecs[0]); !reflect.DeepEqual(got, []float32{1, -2.5}) {
		t.Errorf("the store's vector kept for the state: %v", got)
	}
}
