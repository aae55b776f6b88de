package wire

import (
	"encoding/json"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestMetaAcrossEncodings checks that meta stored in one encoding comes
// back as the same value in the other.
func TestMetaAcrossEncodings(t *testing.T) {
	tests := []struct {
		name     string
		msgpack  any
		wantJSON string
	}{
		{name: "map", msgpack: map[string]any{"a": 1, "b": []any{"x", true, nil}}, wantJSON: `{"a":1,"b":["x",true,null]}`},
		{name: "integer keys", msgpack: map[int]string{1: "a"}, wantJSON: `{"1":"a"}`},
		{name: "string", msgpack: "hello", wantJSON: `"hello"`},
		{name: "bytes", msgpack: []byte{1, 2}, wantJSON: `"AQI="`},
		{name: "float", msgpack: 1.5, wantJSON: `1.5`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := msgpack.Marshal(tc.msgpack)
			if err != nil {
				t.Fatal(err)
			}
			got := metaAs(append([]byte{MetaTagMsgpack}, raw...), JSON)
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("%s is not JSON: %v", got, err)
			}
			_ = json.Unmarshal([]byte(tc.wantJSON), &w)
			gb, _ := json.Marshal(g)
			wb, _ := json.Marshal(w)
			if string(gb) != string(wb) {
				t.Errorf("msgpack meta as JSON: %s, want %s", got, tc.wantJSON)
			}
			// and back: JSON stored, msgpack asked for
			back := metaAs(append([]byte{MetaTagJSON}, got...), Msgpack)
			var v any
			if err := msgpack.Unmarshal(back, &v); err != nil {
				t.Fatalf("JSON meta as msgpack does not decode: %v", err)
			}
			if bb, _ := json.Marshal(jsonable(v)); string(bb) != string(gb) {
				t.Errorf("round trip through JSON and back to msgpack: %s, want %s", bb, gb)
			}
		})
	}
	if got := string(metaAs(nil, JSON)); got != "null" {
		t.Errorf("no meta as JSON: %s", got)
	}
}
