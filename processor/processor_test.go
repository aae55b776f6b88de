package processor_test

import (
	"encoding/binary"
	"math"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/pelm-dev/pelm/processor"
)

// TestOpsEndToEnd drives every op through NATS in both encodings, with and
// without Pelm-Reply-To, and checks every result field by field.
func TestOpsEndToEnd(t *testing.T) {
	for _, enc := range []string{"msgpack", "json"} {
		for _, withReply := range []bool{false, true} {
			name := enc
			if withReply {
				name += "/reply-to"
			}
			t.Run(name, func(t *testing.T) { runOps(t, enc, withReply) })
		}
	}
}

func runOps(t *testing.T, enc string, withReply bool) {
	e := startEnv(t, processor.Config{})
	encode := func(v map[string]any) ([]byte, map[string]string) {
		h := map[string]string{}
		var b []byte
		if enc == "json" {
			b, h["Content-Type"] = js(t, v), "application/json"
		} else {
			b = mp(t, v)
		}
		return b, h
	}
	next := map[string]func() *nats.Msg{}
	send := func(op string, body map[string]any, msgID string) (uint64, *nats.Msg) {
		b, h := encode(body)
		if msgID != "" {
			h["Nats-Msg-Id"] = msgID
		}
		subject := "pelm.res.m1." + op
		if withReply {
			subject = "app.results." + op
			h["Pelm-Reply-To"] = subject
		}
		if next[subject] == nil {
			next[subject] = e.sub(subject)
		}
		seq := e.publish(req{subject: "pelm.req.m1." + op, body: b, headers: h})
		m := next[subject]()
		wantCT := "application/msgpack"
		if enc == "json" {
			wantCT = "application/json"
		}
		if got := m.Header.Get("Content-Type"); got != wantCT {
			t.Errorf("%s: Content-Type %q, want %q", op, got, wantCT)
		}
		if got := m.Header.Get("Pelm-Seq"); got != strconv.FormatUint(seq, 10) {
			t.Errorf("%s: Pelm-Seq %q, want %d", op, got, seq)
		}
		if got := m.Header.Get("Nats-Msg-Id"); got != "res-"+strconv.FormatUint(seq, 10) {
			t.Errorf("%s: Nats-Msg-Id %q, want res-%d", op, got, seq)
		}
		if got := m.Header.Get("Pelm-Request-Id"); got != msgID {
			t.Errorf("%s: Pelm-Request-Id %q, want %q", op, got, msgID)
		}
		return seq, m
	}
	common := func(res map[string]any, op string, seq uint64, msgID string) {
		t.Helper()
		if res["op"] != op || res["memory"] != "m1" || res["req_id"] != msgID || num(res["seq"]) != float64(seq) || res["ok"] != true {
			t.Errorf("%s: header fields %v", op, res)
		}
		lat, ok := res["latency"].(map[string]any)
		if !ok || num(lat["batch"]) < 1 || num(lat["total_us"]) < num(lat["process_us"]) {
			t.Errorf("%s: latency %v", op, res["latency"])
		}
	}

	filt := newRefFilter()
	vecs := [][]float64{{1, 0, 0, 0}, {0.8, 0.6, 0, 0}, {0, 0, 1, 0}, {0.9, 0.1, 0.1, 0}}
	phases := []float64{0.50, 0.55, 0.52, 0.9}
	var items []refItem
	for i, v := range vecs[:3] {
		id := "item-" + strconv.Itoa(i)
		body := map[string]any{"vector": v, "phase": phases[i], "id": id, "moral": 0.95, "meta": map[string]any{"n": i}}
		if enc == "msgpack" && i == 1 {
			body["vector"] = binVector(v) // bin of little-endian float32
		}
		seq, m := send("store", body, "s-"+id)
		res := result(t, m)
		common(res, "store", seq, "s-"+id)
		_, thr := filt.decide(0.95)
		if res["accepted"] != true || res["id"] != id || num(res["moral"]) != 0.95 || num(res["threshold"]) != thr {
			t.Errorf("store %d: %v", i, res)
		}
		if _, ok := res["evicted"]; ok {
			t.Errorf("store %d: evicted set in a memory with room: %v", i, res)
		}
		items = append(items, refItem{id: id, vec: v, phase: phases[i], conf: 1, order: i})
	}

	q := []float64{1, 0.2, 0, 0}
	seq, m := send("retrieve", map[string]any{"vector": q, "phase": 0.5, "top_k": 2, "with_vectors": true}, "")
	res := result(t, m)
	common(res, "retrieve", seq, "")
	checkMatches(t, res, refRetrieve(items, q, 0.5, 0.15, 2, 0))
	first := res["matches"].([]any)[0].(map[string]any)
	if meta, _ := first["meta"].(map[string]any); num(meta["n"]) != 0 {
		t.Errorf("meta of item-0 came back as %v", first["meta"])
	}
	if v, _ := first["vector"].([]any); len(v) != 4 || math.Abs(num(v[0])-1) > 1e-6 {
		t.Errorf("with_vectors: %v", first["vector"])
	}
	if num(first["phase"]) != 0.5 || num(first["confidence"]) != 1 {
		t.Errorf("match fields: %v", first)
	}

	// process: accepted, so it retrieves the context (before itself) and stores.
	seq, m = send("process", map[string]any{"vector": vecs[3], "phase": 0.5, "id": "p1", "text": "we help and support"}, "p-1")
	res = result(t, m)
	common(res, "process", seq, "p-1")
	_, thr := filt.decide(0.9)
	if res["accepted"] != true || num(res["moral"]) != 0.9 || res["id"] != "p1" || num(res["threshold"]) != thr {
		t.Errorf("process: %v", res)
	}
	checkMatches(t, res, refRetrieve(items, vecs[3], 0.5, 0.15, 5, 0))
	items = append(items, refItem{id: "p1", vec: vecs[3], phase: 0.5, conf: 1, order: 3})

	// process rejected by the filter: nothing retrieved or stored.
	_, m = send("process", map[string]any{"vector": vecs[0], "phase": 0.5, "id": "bad", "text": "kill attack destroy"}, "")
	res = result(t, m)
	harmful := 3.0
	score := 0.8 - float64(harmful*0.15) // three harmful words, in the ancestor's float64: 0.3500000000000001
	if acc, thr := filt.decide(score); acc || res["accepted"] != false || res["reason"] != "moral" || num(res["moral"]) != score ||
		num(res["threshold"]) != thr || len(res["matches"].([]any)) != 0 {
		t.Errorf("rejected process: %v", res)
	}
	// low confidence: accepted by the filter, not stored.
	_, m = send("store", map[string]any{"vector": vecs[0], "phase": 0.5, "id": "low", "confidence": 0.3}, "")
	if acc, _ := filt.decide(0.8); !acc {
		t.Fatal("the reference filter rejects 0.8 here: the low-confidence case needs another moral")
	}
	if res = result(t, m); res["accepted"] != false || res["reason"] != "low_confidence" {
		t.Errorf("low confidence store: %v", res)
	}

	_, m = send("forget", map[string]any{"id": "item-0"}, "")
	if res = result(t, m); res["found"] != true || res["id"] != "item-0" {
		t.Errorf("forget: %v", res)
	}
	_, m = send("forget", map[string]any{"id": "item-0"}, "")
	if res = result(t, m); res["found"] != false {
		t.Errorf("second forget: %v", res)
	}
	items = items[1:]
	_, m = send("retrieve", map[string]any{"vector": q, "phase": 0.5, "tolerance": 1.0, "top_k": 10}, "")
	checkMatches(t, result(t, m), refRetrieve(items, q, 0.5, 1, 10, 0))
}

func binVector(v []float64) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(x)))
	}
	return b
}
