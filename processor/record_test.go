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
