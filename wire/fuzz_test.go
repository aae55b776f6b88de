package wire

import (
	"math"
	"runtime/metrics"
	"testing"
)

// allocatedBytes is the heap bytes allocated so far by the process: unlike
// the live heap it keeps counting what was already freed.
func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// checkDecoded holds what a successful decode promises, whatever the input.
func checkDecoded(t *testing.T, data []byte, r *Request, dim int) {
	if r.Has(HasVector) {
		if len(r.Vector) != dim {
			t.Fatalf("vector of %d elements accepted for dim %d", len(r.Vector), dim)
		}
		for _, x := range r.Vector {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("non-finite %v accepted", x)
			}
		}
	}
	for _, b := range [][]byte{r.ID, r.Text, r.Meta} {
		if len(b) > len(data) {
			t.Fatalf("a field of %d bytes came from %d bytes of input", len(b), len(data))
		}
	}
	if r.Has(HasTopK) && (r.TopK < 1 || r.TopK > MaxTopK) {
		t.Fatalf("top_k %d accepted", r.TopK)
	}
}

// FuzzDecodeMsgpack feeds arbitrary bytes to the msgpack decoder: it must
// never panic, never accept what breaks a field's rule, and never allocate
// by a declared length (the fuzzer's memory limit catches that).
func FuzzDecodeMsgpack(f *testing.F) {
	f.Add(mustMsgpack(f, map[string]any{"vector": []float32{1, 2, 3, 4}, "phase": 0.5, "id": "a", "meta": map[string]any{"x": []int{1}}}))
	f.Add(mustMsgpack(f, map[string]any{"vector": []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64}, "phase": 1, "top_k": 3}))
	f.Add([]byte{0x81, 0xa6, 'v', 'e', 'c', 't', 'o', 'r', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa4, 'm', 'e', 't', 'a', 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01})
	md := NewDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Request{Vector: make([]float32, 0, 4)}
		limit := 64<<10 + 16*uint64(len(data))
		before := allocatedBytes()
		e := md.Decode(data, 4, r)
		if grew := allocatedBytes() - before; grew > limit {
			// The count is the whole process's: measure once more, so that
			// the fuzzer's own allocations are not taken for ours.
			before = allocatedBytes()
			_ = md.Decode(data, 4, &Request{Vector: make([]float32, 0, 4)})
			if grew := allocatedBytes() - before; grew > limit {
				t.Fatalf("decoding %d bytes allocated %d bytes: a declared length was believed", len(data), grew)
			}
		}
		if e != nil {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
			return
		}
		checkDecoded(t, data, r, 4)
		// Decoding is deterministic: the same bytes give the same request.
		r2 := &Request{Vector: make([]float32, 0, 4)}
		if e := md.Decode(data, 4, r2); e != nil || r2.has != r.has || r2.Phase != r.Phase && !math.IsNaN(r.Phase) {
			t.Fatalf("second decode differs: %v %+v %+v", e, r, r2)
		}
	})
}

// FuzzDecodeJSON does the same for the JSON decoder.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"vector":[1,2,3,4],"phase":0.5,"id":"a","meta":{"x":[1,"y",null]}}`))
	f.Add([]byte(`{"vector":[1,1e999,3,4],"phase":0.5}`))
	f.Add([]byte(`{"vector":[[1],2,3,4]}`))
	f.Add([]byte(`{"top_k": 1e3, "with_vectors": true, "text": "kill \u00e9"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Request{Vector: make([]float32, 0, 4)}
		if e := DecodeJSON(data, 4, r); e != nil {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
			return
		}
		checkDecoded(t, data, r, 4)
	})
}
