package processor_test

import (
	"bytes"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
)

// TestErrorTable sends every kind of bad request and checks that each gets
// an error result with the right code at the right subject, that its bytes
// and headers land in the DLQ with Pelm-Error, and that the processor keeps
// serving.
func TestErrorTable(t *testing.T) {
	e := startEnv(t, processor.Config{ReplyAllow: []string{"app.>", "_INBOX.>", "pelm.>", "$JS.>"}})
	good := map[string]any{"vector": []float64{1, 2, 3, 4}, "phase": 0.5}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	valid := mp(t, good)
	bomb := []byte{0x81, 0xa6, 'v', 'e', 'c', 't', 'o', 'r', 0xdd, 0xff, 0xff, 0xff, 0xff}
	if len(bomb) != 13 {
		t.Fatal("the bomb is 13 bytes")
	}
	tests := []struct {
		name     string
		subject  string
		body     []byte
		headers  map[string]string
		code     string
		resultOn string // default: pelm.res.m.store
	}{
		{name: "wrong dimension", body: mp(t, with("vector", []float64{1, 2, 3})), code: "bad_dimension"},
		{name: "wrong dimension bin", body: mp(t, with("vector", []byte{1, 2, 3, 4})), code: "bad_dimension"},
		{name: "NaN", body: mp(t, with("vector", []float64{1, math.NaN(), 3, 4})), code: "bad_value"},
		{name: "Inf", body: mp(t, with("vector", []float64{1, math.Inf(1), 3, 4})), code: "bad_value"},
		{name: "float32 overflow", body: mp(t, with("vector", []float64{1, 1e39, 3, 4})), code: "bad_value"},
		{name: "all zero", body: mp(t, with("vector", []float64{0, 0, 0, 0})), code: "bad_value"},
		{name: "phase 1.5", body: mp(t, with("phase", 1.5)), code: "bad_value"},
		{name: "phase missing", body: mp(t, with("phase", nil)), code: "bad_request"},
		{name: "vector missing", body: mp(t, with("vector", nil)), code: "bad_request"},
		{name: "top_k 0", subject: "pelm.req.m.retrieve", body: mp(t, with("top_k", 0)), code: "bad_value", resultOn: "pelm.res.m.retrieve"},
		{name: "top_k 1001", subject: "pelm.req.m.retrieve", body: mp(t, with("top_k", 1001)), code: "bad_value", resultOn: "pelm.res.m.retrieve"},
		{name: "confidence 2", body: mp(t, with("confidence", 2)), code: "bad_value"},
		{name: "phase is a string", body: mp(t, with("phase", "half")), code: "bad_request"},
		{name: "vector is a string", body: mp(t, with("vector", "1,2,3,4")), code: "bad_request"},
		{name: "vector holds a string", body: mp(t, with("vector", []any{1, "2", 3, 4})), code: "bad_request"},
		{name: "id is a number", body: mp(t, with("id", 7)), code: "bad_request"},
		{name: "id too long", body: mp(t, with("id", strings.Repeat("x", 257))), code: "bad_value"},
		{name: "meta too large", body: mp(t, with("meta", strings.Repeat("x", 5000))), code: "too_large"},
		{name: "text too large", body: mp(t, with("text", strings.Repeat("x", 65*1024))), code: "too_large"},
		{name: "forget without id", subject: "pelm.req.m.forget", body: mp(t, map[string]any{}), code: "bad_request", resultOn: "pelm.res.m.forget"},
		{name: "truncated msgpack", body: valid[:len(valid)/2], code: "bad_encoding"},
		{name: "random bytes", body: []byte{0xc1, 0x17, 0x99, 0x00, 0xfe, 0x42}, code: "bad_encoding"},
		{name: "not a map", body: mp(t, []int{1, 2}), code: "bad_encoding"},
		{name: "empty body", body: nil, code: "bad_encoding"},
		{name: "create dim 0", subject: "pelm.req.c.create", body: mp(t, map[string]any{"dim": 0}), code: "bad_value", resultOn: "pelm.res.c.create"},
		{name: "create dim 5000", subject: "pelm.req.c.create", body: mp(t, map[string]any{"dim": 5000}), code: "bad_value", resultOn: "pelm.res.c.create"},
		{name: "create capacity 2000000", subject: "pelm.req.c.create", body: mp(t, map[string]any{"capacity": 2000000}), code: "bad_value", resultOn: "pelm.res.c.create"},
		{name: "create capacity 2.5", subject: "pelm.req.c.create", body: mp(t, map[string]any{"capacity": 2.5}), code: "bad_value", resultOn: "pelm.res.c.create"},
		{name: "create eviction lru", subject: "pelm.req.c.create", body: mp(t, map[string]any{"eviction": "lru"}), code: "bad_value", resultOn: "pelm.res.c.create"},
		{name: "create filter_threshold 0.1", subject: "pelm.req.c.create", body: mp(t, map[string]any{"filter_threshold": 0.1}), code: "bad_value", resultOn: "pelm.res.c.create"},
		{name: "create filter_threshold NaN", subject: "pelm.req.c.create", body: mp(t, map[string]any{"filter_threshold": math.NaN()}), code: "bad_value", resultOn: "pelm.res.c.create"},
		{name: "create scrub is a string", subject: "pelm.req.c.create", body: mp(t, map[string]any{"scrub": "yes"}), code: "bad_request", resultOn: "pelm.res.c.create"},
		{name: "ttl negative", body: mp(t, with("ttl", -1)), code: "bad_value"},
		{name: "ttl NaN", body: mp(t, with("ttl", math.NaN())), code: "bad_value"},
		{name: "ttl of 200 years", body: mp(t, with("ttl", 200*365.25*86400)), code: "bad_value"},
		{name: "ttl is a string", body: mp(t, with("ttl", "1h")), code: "bad_request"},
		{name: "create ttl negative", subject: "pelm.req.c.create", body: mp(t, map[string]any{"ttl": -5}), code: "bad_value", resultOn: "pelm.res.c.create"},
		{name: "info of no memory", subject: "pelm.req.nowhere.info", body: mp(t, map[string]any{}), code: "not_found", resultOn: "pelm.res.nowhere.info"},
		{name: "array bomb", body: bomb, code: "bad_encoding"},
		{name: "map bomb", body: []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, code: "bad_encoding"},
		{name: "string bomb", body: []byte{0x81, 0xa2, 'i', 'd', 0xdb, 0xff, 0xff, 0xff, 0xff}, code: "bad_encoding"},
		{name: "bin bomb", body: []byte{0x81, 0xa6, 'v', 'e', 'c', 't', 'o', 'r', 0xc6, 0xff, 0xff, 0xff, 0xff}, code: "bad_encoding"},
		{name: "meta nesting bomb", body: append([]byte{0x81, 0xa4, 'm', 'e', 't', 'a'}, bytes.Repeat([]byte{0x91}, 10000)...), code: "too_large"},
		{name: "bad json", body: []byte(`{"vector": [1,2,3,4], "phase": }`), headers: jsonHdr, code: "bad_encoding"},
		{name: "json NaN", body: []byte(`{"vector": [1,NaN,3,4], "phase": 0.5}`), headers: jsonHdr, code: "bad_encoding"},
		{name: "json 1e999", body: []byte(`{"vector": [1,1e999,3,4], "phase": 0.5}`), headers: jsonHdr, code: "bad_value"},
		{name: "json wrong type", body: []byte(`{"vector": [1,2,3,4], "phase": "0.5"}`), headers: jsonHdr, code: "bad_request"},
		{name: "json wrong dimension", body: []byte(`{"vector": [1,2,3,4,5], "phase": 0.5}`), headers: jsonHdr, code: "bad_dimension"},
		{name: "unknown content type", body: valid, headers: map[string]string{"Content-Type": "text/plain"}, code: "bad_encoding"},
		{name: "bad memory name", subject: "pelm.req.bad!name.store", body: valid, code: "bad_memory", resultOn: "pelm.res._invalid.store"},
		{name: "memory name too long", subject: "pelm.req." + strings.Repeat("a", 65) + ".store", body: valid, code: "bad_memory", resultOn: "pelm.res._invalid.store"},
		{name: "json too many tokens", subject: "pelm.req.a.b.store", body: []byte(`{"vector":[1,2,3,4],"phase":0.5}`), headers: jsonHdr, code: "unknown_op", resultOn: "pelm.res.a._invalid"},
		{name: "json bad memory", subject: "pelm.req.bad!x.store", body: []byte(`{"vector":[1,2,3,4],"phase":0.5}`), headers: jsonHdr, code: "bad_memory", resultOn: "pelm.res._invalid.store"},
		{name: "unknown op", subject: "pelm.req.m.frobnicate", body: valid, code: "unknown_op", resultOn: "pelm.res.m._invalid"},
		{name: "wildcard op", subject: "pelm.req.m.*", body: valid, code: "unknown_op", resultOn: "pelm.res.m._invalid"},
		{name: "bad memory with a reply-to", subject: "pelm.req.bad!name.store", body: valid, headers: map[string]string{"Pelm-Reply-To": "app.mine"}, code: "bad_memory", resultOn: "app.mine"},
		{name: "reply-to too long", body: valid, headers: map[string]string{"Pelm-Reply-To": "app." + strings.Repeat("x", 5000)}, code: "bad_request"},
		{name: "reply-to the stats", body: valid, headers: map[string]string{"Pelm-Reply-To": "pelm.stats"}, code: "bad_request"},
		{name: "json meta nested too deep", body: []byte(`{"vector":[1,2,3,4],"phase":0.5,"meta":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`), headers: jsonHdr, code: "too_large"},
		{name: "content type too long", body: valid, headers: map[string]string{"Content-Type": strings.Repeat("x", 40000)}, code: "bad_encoding"},
		{name: "no op", subject: "pelm.req.m", body: valid, code: "unknown_op", resultOn: "pelm.res.m._invalid"},
		{name: "reply-to $JS.API.X", body: valid, headers: map[string]string{"Pelm-Reply-To": "$JS.API.X"}, code: "bad_request"},
		{name: "reply-to a request subject", body: valid, headers: map[string]string{"Pelm-Reply-To": "pelm.req.m.store"}, code: "bad_request"},
		{name: "reply-to the dlq", body: valid, headers: map[string]string{"Pelm-Reply-To": "pelm.dlq.m.store"}, code: "bad_request"},
		{name: "reply-to a wildcard", body: valid, headers: map[string]string{"Pelm-Reply-To": "app.*"}, code: "bad_request"},
		{name: "reply-to not allowed", body: valid, headers: map[string]string{"Pelm-Reply-To": "other.subject"}, code: "bad_request"},
	}
	dlq := e.sub("pelm.dlq.>")
	results := map[string]func() *nats.Msg{}
	// TotalAlloc counts every byte allocated, freed or not: a decoder that
	// believed a declared length would show here even after a GC.
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			subject := tc.subject
			if subject == "" {
				subject = "pelm.req.m.store"
			}
			on := tc.resultOn
			if on == "" {
				on = "pelm.res.m.store"
			}
			if results[on] == nil {
				results[on] = e.sub(on)
			}
			seq := e.publish(req{subject: subject, body: tc.body, headers: tc.headers})
			m := results[on]()
			res := result(t, m)
			errField, _ := res["error"].(map[string]any)
			if res["ok"] != false || errField["code"] != tc.code || errField["message"] == "" {
				t.Fatalf("result %v, want error code %s", res, tc.code)
			}
			if want := tc.headers["Content-Type"]; want == "application/json" && m.Header.Get("Content-Type") != want {
				t.Errorf("a JSON request's error result came as %q", m.Header.Get("Content-Type"))
			}
			if num(res["seq"]) != float64(seq) {
				t.Errorf("seq %v, want %d", res["seq"], seq)
			}
			d := dlq()
			if !strings.HasPrefix(d.Header.Get("Pelm-Error"), tc.code+": ") {
				t.Errorf("DLQ Pelm-Error %q, want %s: ...", d.Header.Get("Pelm-Error"), tc.code)
			}
			if !bytes.Equal(d.Data, tc.body) {
				t.Errorf("DLQ copy holds %d bytes, want the request's %d", len(d.Data), len(tc.body))
			}
			for k, v := range tc.headers {
				if d.Header.Get(k) != v {
					t.Errorf("DLQ header %s = %q, want %q", k, d.Header.Get(k), v)
				}
			}
		})
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
		t.Errorf("%d MiB allocated over the error table", grew>>20)
	}

	// Still serving, and the DLQ stream holds every refused request.
	res := results["pelm.res.m.store"]
	e.publish(req{subject: "pelm.req.m.store", body: valid})
	if r := result(t, res()); r["ok"] != true || r["accepted"] != true {
		t.Errorf("valid store after the error table: %v", r)
	}
	st, err := e.js.Stream(t.Context(), wire.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(tests)) {
		t.Errorf("DLQ stream holds %d messages, want %d", info.State.Msgs, len(tests))
	}
	rq, _ := e.js.Stream(t.Context(), wire.RequestsStream)
	eventually(t, "the requests stream empties (every request acked or terminated)", func() bool {
		info, err := rq.Info(t.Context())
		return err == nil && info.State.Msgs == 0
	})
}
