package wire

import (
	"reflect"
	"testing"
)

// TestResultRoundTrip: what ResultEncoder writes, DecodeResult reads back,
// field for field, in both encodings.
func TestResultRoundTrip(t *testing.T) {
	cfg := &MemoryConfig{Dim: 1536, Capacity: 500, Eviction: "confidence", FilterThreshold: 0.6, FilterAdaptive: true, Scrub: true, TTL: 3600}
	tests := []struct {
		name string
		o    Outcome
		want Result
	}{
		{name: "create", o: Outcome{OpName: "create", Op: OpCreate, Memory: "m", Seq: 3, Config: cfg},
			want: Result{Op: "create", Memory: "m", Seq: 3, OK: true, Config: cfg}},
		{name: "info", o: Outcome{OpName: "info", Op: OpInfo, Memory: "m", ReqID: "r", Seq: 4, Config: cfg, Size: 7, Threshold: 0.55, EMA: 0.61},
			want: Result{Op: "info", Memory: "m", ReqID: "r", Seq: 4, OK: true, Config: cfg, Size: 7, Threshold: 0.55, EMA: 0.61}},
		{name: "drop", o: Outcome{OpName: "drop", Op: OpDrop, Memory: "m", Seq: 5, Found: true},
			want: Result{Op: "drop", Memory: "m", Seq: 5, OK: true, Found: true}},
		{name: "store scrubbed", o: Outcome{OpName: "store", Op: OpStore, Memory: "m", Seq: 6, Decided: true, Accepted: true,
			Moral: 0.8, Threshold: 0.5, ID: "x", Scrubs: true, Scrubbed: 2},
			want: Result{Op: "store", Memory: "m", Seq: 6, OK: true, Accepted: true, Moral: 0.8, Threshold: 0.5, ID: "x", Scrubbed: 2}},
		{name: "not found", o: Outcome{OpName: "info", Op: OpInfo, Memory: "m", Seq: 7, Err: Errorf(CodeNotFound, "memory %q does not exist", "m")},
			want: Result{Op: "info", Memory: "m", Seq: 7, Error: &Error{Code: CodeNotFound, Message: `memory "m" does not exist`}}},
	}
	re := NewResultEncoder()
	for _, tc := range tests {
		for _, enc := range []Encoding{Msgpack, JSON} {
			t.Run(tc.name+"/"+enc.ContentType(), func(t *testing.T) {
				o := tc.o
				o.Enc = enc
				got, err := DecodeResult(re.Encode(&o), enc.ContentType())
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(*got, tc.want) {
					t.Errorf("round trip:\n got %+v\nwant %+v", *got, tc.want)
				}
			})
		}
	}
}
