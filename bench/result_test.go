package bench

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestScanResult(t *testing.T) {
	type kv = map[string]any
	big := make([]any, 300)
	for i := range big {
		big[i] = kv{"id": "x", "score": float32(0.5), "meta": kv{"n": []any{int64(-1), uint64(1 << 40), nil, true, []byte{1, 2}}}}
	}
	ordered := func(fields ...any) []byte {
		b := appendMapLen(nil, len(fields)/2)
		for i := 0; i < len(fields); i += 2 {
			b = appendStr(b, fields[i].(string))
			v, err := msgpack.Marshal(fields[i+1])
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, v...)
		}
		return b
	}
	tests := []struct {
		name     string
		body     []byte
		wantOK   bool
		wantCode string
		wantErr  bool
	}{
		{name: "ok first", body: ordered("ok", true, "matches", big), wantOK: true},
		{name: "ok after every kind of value", body: ordered("op", "retrieve", "seq", uint64(1<<33), "latency", kv{"total_us": 12.5}, "matches", big, "ok", true), wantOK: true},
		{name: "an error", body: ordered("op", "store", "ok", false, "error", kv{"code": "bad_value", "message": "NaN"}), wantCode: "bad_value"},
		{name: "the echo's reply", body: echoBody(400), wantOK: true},
		{name: "no ok", body: ordered("op", "store"), wantErr: true},
		{name: "truncated", body: ordered("matches", big, "ok", true)[:100], wantErr: true},
		{name: "not a map", body: []byte{0x93, 1, 2, 3}, wantErr: true},
		{name: "empty", body: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, code, err := scanResult(tt.body)
			if (err != nil) != tt.wantErr || ok != tt.wantOK || code != tt.wantCode {
				t.Errorf("scanResult = %v, %q, %v; want %v, %q, error %v", ok, code, err, tt.wantOK, tt.wantCode, tt.wantErr)
			}
		})
	}
	if n := len(echoBody(400)); n < 398 || n > 402 {
		t.Errorf("echoBody(400) is %d bytes", n)
	}
}

func TestRequestBodies(t *testing.T) {
	vec := []float32{1, -2, 0.5}
	for o := range numOps {
		var m map[string]any
		if err := msgpack.Unmarshal(requestBody(o, vec, 0.9, 7, 0), &m); err != nil {
			t.Fatalf("%s: %v", opNames[o], err)
		}
		if o == opForget {
			if m["id"] != "bench-forget-7" {
				t.Errorf("forget: %v", m)
			}
			continue
		}
		if m["phase"] != 0.9 || len(m["vector"].([]byte)) != 12 {
			t.Errorf("%s: %v", opNames[o], m)
		}
	}
}

func TestRequestID(t *testing.T) {
	r := &runner{token: "0a1b2c3d"}
	for _, c := range []struct {
		step uint64
		i    int
	}{{1, 0}, {17, 123456}, {1 << 40, 1<<31 - 1}} {
		id := r.requestID(nil, c.step, c.i)
		step, i, ok := r.parseID(id)
		if !ok || step != c.step || i != c.i {
			t.Errorf("parseID(%q) = %d, %d, %v", id, step, i, ok)
		}
	}
	for _, bad := range []string{"", "0a1b2c3d", "0a1b2c3d-1", "0a1b2c3d-1-", "0a1b2c3d--1", "ffffffff-1-2", "0a1b2c3d-1-2-3", "0a1b2c3d-1-x"} {
		if _, _, ok := r.parseID(bad); ok {
			t.Errorf("parseID(%q) accepted", bad)
		}
	}
}
