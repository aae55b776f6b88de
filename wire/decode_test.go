package wire

import (
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func mustMsgpack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeMsgpackFields(t *testing.T) {
	body := mustMsgpack(t, map[string]any{
		"vector": []float32{1, -2, 3.5, 4}, "phase": 0.25, "id": "x", "moral": 0.7, "text": "hi",
		"confidence": 0.9, "meta": map[string]any{"a": []int{1, 2}}, "tolerance": 0.1, "top_k": 7,
		"min_confidence": 0.2, "with_vectors": true, "unknown": map[string]any{"deep": []any{1, "x", nil}},
	})
	md := NewDecoder()
	r := &Request{Vector: make([]float32, 0, 4)}
	if e := md.Decode(body, 4, r); e != nil {
		t.Fatal(e)
	}
	if e := r.Validate(OpProcess, Defaults{Tolerance: 0.15, TopK: 5}); e != nil {
		t.Fatal(e)
	}
	want := []float32{1, -2, 3.5, 4}
	for i := range want {
		if r.Vector[i] != want[i] {
			t.Fatalf("vector %v, want %v", r.Vector, want)
		}
	}
	if r.Phase != 0.25 || string(r.ID) != "x" || r.Moral != 0.7 || string(r.Text) != "hi" || r.Confidence != 0.9 ||
		r.Tolerance != 0.1 || r.TopK != 7 || r.MinConfidence != 0.2 || !r.WithVectors {
		t.Errorf("decoded %+v", r)
	}
	var meta map[string]any
	if err := msgpack.Unmarshal(r.Meta, &meta); err != nil || len(meta) != 1 {
		t.Errorf("meta %x: %v", r.Meta, err)
	}
}

func TestDecodeDefaults(t *testing.T) {
	md := NewDecoder()
	r := &Request{Vector: make([]float32, 0, 2)}
	if e := md.Decode(mustMsgpack(t, map[string]any{"vector": []int{1, 0}, "phase": 1, "top_k": nil}), 2, r); e != nil {
		t.Fatal(e)
	}
	if e := r.Validate(OpRetrieve, Defaults{Tolerance: 0.15, TopK: 5}); e != nil {
		t.Fatal(e)
	}
	if r.Tolerance != 0.15 || r.TopK != 5 || r.Confidence != 1 || r.MinConfidence != 0 || r.WithVectors {
		t.Errorf("defaults not applied: %+v", r)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		json bool
		op   Op
		code Code
	}{
		{name: "integers in vector are fine", body: mustMsgpack(t, map[string]any{"vector": []int64{1, -1, 300, 1 << 40}, "phase": 0}), op: OpStore},
		{name: "nil vector is missing", body: mustMsgpack(t, map[string]any{"vector": nil, "phase": 0}), op: OpStore, code: CodeBadRequest},
		{name: "trailing bytes", body: append(mustMsgpack(t, map[string]any{"vector": []int{1, 2, 3, 4}, "phase": 0}), 0x00), op: OpStore, code: CodeBadEncoding},
		{name: "key not a string", body: []byte{0x81, 0x01, 0x02}, op: OpStore, code: CodeBadRequest},
		{name: "ext in meta is fine", body: append(mustMsgpack(t, map[string]any{"vector": []int{1, 2, 3, 4}, "phase": 0})[:0:0],
			append([]byte{0x83, 0xa6, 'v', 'e', 'c', 't', 'o', 'r', 0x94, 1, 2, 3, 4, 0xa5, 'p', 'h', 'a', 's', 'e', 0x00, 0xa4, 'm', 'e', 't', 'a'}, 0xd6, 0x01, 1, 2, 3, 4)...), op: OpStore},
		{name: "truncated float in vector", body: []byte{0x81, 0xa6, 'v', 'e', 'c', 't', 'o', 'r', 0x94, 0xca, 0x00}, op: OpStore, code: CodeBadEncoding},
		{name: "top_k 2.5", body: mustMsgpack(t, map[string]any{"vector": []int{1, 2, 3, 4}, "phase": 0, "top_k": 2.5}), op: OpRetrieve, code: CodeBadValue},
		{name: "tolerance -0.1", body: mustMsgpack(t, map[string]any{"vector": []int{1, 2, 3, 4}, "phase": 0, "tolerance": -0.1}), op: OpRetrieve, code: CodeBadValue},
		{name: "empty id", body: mustMsgpack(t, map[string]any{"id": ""}), op: OpForget, code: CodeBadValue},
		{name: "with_vectors not bool", body: mustMsgpack(t, map[string]any{"vector": []int{1, 2, 3, 4}, "phase": 0, "with_vectors": 1}), op: OpRetrieve, code: CodeBadRequest},
		{name: "json ok", body: []byte(` { "vector" : [ 1 , 2e0 , -3.5 , 4 ] , "phase" : 0.5, "meta": {"k": [1, "x"]}, "extra": null } `), json: true, op: OpStore},
		{name: "json not an object", body: []byte(`[1,2]`), json: true, op: OpStore, code: CodeBadEncoding},
		{name: "json trailing data", body: []byte(`{"vector":[1,2,3,4],"phase":0} {}`), json: true, op: OpStore, code: CodeBadEncoding},
		{name: "json nested array in vector", body: []byte(`{"vector":[[1],2,3,4],"phase":0}`), json: true, op: OpStore, code: CodeBadRequest},
		{name: "json string in vector", body: []byte(`{"vector":["1,2",2,3,4],"phase":0}`), json: true, op: OpStore, code: CodeBadRequest},
		{name: "json id number", body: []byte(`{"id": 3}`), json: true, op: OpForget, code: CodeBadRequest},
		{name: "json empty vector", body: []byte(`{"vector":[],"phase":0}`), json: true, op: OpStore, code: CodeBadDimension},
	}
	md := NewDecoder()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Request{Vector: make([]float32, 0, 4)}
			var e *Error
			if tc.json {
				e = DecodeJSON(tc.body, 4, r)
			} else {
				e = md.Decode(tc.body, 4, r)
			}
			if e == nil {
				e = r.Validate(tc.op, Defaults{Tolerance: 0.15, TopK: 5})
			}
			switch {
			case tc.code == "" && e != nil:
				t.Fatalf("unexpected error %v", e)
			case tc.code != "" && (e == nil || e.Code != tc.code):
				t.Fatalf("error %v, want code %s", e, tc.code)
			}
		})
	}
}

// TestDecodeDoesNotAllocate holds the hot path to its contract: decoding a
// typical msgpack store request allocates nothing.
func TestDecodeDoesNotAllocate(t *testing.T) {
	vec := make([]float32, 384)
	for i := range vec {
		vec[i] = float32(i%7) - 3
	}
	body := mustMsgpack(t, map[string]any{"vector": vec, "phase": 0.5, "id": "item-1", "moral": 0.9, "meta": map[string]any{"k": "v"}})
	md := NewDecoder()
	r := &Request{Vector: make([]float32, 0, 384)}
	allocs := testing.AllocsPerRun(200, func() {
		if e := md.Decode(body, 384, r); e != nil {
			t.Fatal(e)
		}
		if e := r.Validate(OpStore, Defaults{Tolerance: 0.15, TopK: 5}); e != nil {
			t.Fatal(e)
		}
	})
	if allocs != 0 {
		t.Errorf("decode allocates %v times per request", allocs)
	}
}

func BenchmarkDecodeMsgpack(b *testing.B) {
	vec := make([]float32, 384)
	for i := range vec {
		vec[i] = float32(math.Sin(float64(i)))
	}
	body := mustMsgpack(b, map[string]any{"vector": vec, "phase": 0.5, "id": strings.Repeat("i", 12), "moral": 0.9})
	md := NewDecoder()
	r := &Request{Vector: make([]float32, 0, 384)}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if e := md.Decode(body, 384, r); e != nil {
			b.Fatal(e)
		}
	}
}
