package processor_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
)

// TestMemoriesManaged drives create, info and drop as a client would: each
// memory keeps its own settings, management requests are ordered with the
// memory's others (also inside one batch), and settings and drops survive
// a restart.
func TestMemoriesManaged(t *testing.T) {
	srv := startServer(t)
	cfg := processor.Config{Memory: pelm.Config{Dim: 4}, Batch: batcher.Config{MaxSize: 64, MaxWait: 200 * time.Millisecond}}
	e := startEnvOn(t, srv, cfg)
	next := e.sub("pelm.res.>")
	send := func(mem, op string, body map[string]any) map[string]any {
		t.Helper()
		e.publish(req{subject: "pelm.req." + mem + "." + op, body: mp(t, body)})
		return result(t, next())
	}
	wantCode := func(res map[string]any, code wire.Code) {
		t.Helper()
		errMap, _ := res["error"].(map[string]any)
		if res["ok"] != false || errMap["code"] != string(code) {
			t.Fatalf("want error %s, got %v", code, res)
		}
	}
	own := map[string]any{"dim": 8, "capacity": 3, "eviction": "confidence", "filter_threshold": 0.6, "filter_adaptive": false}
	res := send("m1", "create", own)
	conf, _ := res["config"].(map[string]any)
	if res["ok"] != true || num(conf["dim"]) != 8 || num(conf["capacity"]) != 3 || conf["eviction"] != "confidence" ||
		num(conf["filter_threshold"]) != 0.6 || conf["filter_adaptive"] != false || conf["scrub"] != false {
		t.Fatalf("create: %v", res)
	}
	if res := send("m1", "create", own); res["ok"] != true {
		t.Errorf("create again with the same settings: %v", res)
	}
	wantCode(send("m1", "create", map[string]any{"dim": 16}), wire.CodeExists)
	wantCode(send("m1", "store", map[string]any{"vector": []float64{1, 2, 3, 4}, "phase": 0.5}), wire.CodeBadDimension)
	for i, c := range []float64{0.9, 0.6, 0.8, 0.7} { // capacity 3, lowest confidence evicted
		res := send("m1", "store", map[string]any{"vector": []float64{1, 2, 3, 4, 5, 6, 7, float64(i)}, "phase": 0.5,
			"id": "c" + string(rune('0'+i)), "confidence": c, "moral": 0.7})
		if res["accepted"] != true || num(res["threshold"]) != 0.6 {
			t.Fatalf("store into m1 (fixed threshold 0.6): %v", res)
		}
		if i == 3 && res["evicted"] != "c1" {
			t.Errorf("confidence eviction evicted %v, want c1", res["evicted"])
		}
	}
	res = send("m1", "info", map[string]any{})
	if res["ok"] != true || num(res["size"]) != 3 || num(res["threshold"]) != 0.6 || res["config"] == nil {
		t.Fatalf("info: %v", res)
	}
	wantCode(send("nothing-here", "info", map[string]any{}), wire.CodeNotFound)
	if res := send("nothing-here", "drop", map[string]any{}); res["ok"] != true || res["found"] != false {
		t.Errorf("drop of no memory: %v", res)
	}
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"dim 0", map[string]any{"dim": 0}},
		{"dim 4097", map[string]any{"dim": 4097}},
		{"capacity 1.5", map[string]any{"capacity": 1.5}},
		{"eviction lifo", map[string]any{"eviction": "lifo"}},
		{"threshold 0.95", map[string]any{"filter_threshold": 0.95}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(send("bad", "create", tc.body), wire.CodeBadValue) })
	}

	// One batch: a store makes m3 with the defaults, info sees it, drop
	// deletes it, info no longer finds it, a store makes it afresh.
	seqs := []uint64{}
	for _, r := range []struct{ op, body string }{
		{"store", `{"vector":[1,0,0,0],"phase":0.5,"id":"a"}`}, {"info", `{}`}, {"drop", `{}`}, {"info", `{}`},
		{"store", `{"vector":[0,1,0,0],"phase":0.5,"id":"b"}`}, {"info", `{}`},
	} {
		seqs = append(seqs, e.publish(req{subject: "pelm.req.m3." + r.op, body: []byte(r.body), headers: jsonHdr}))
	}
	got := map[float64]map[string]any{}
	for range seqs {
		r := result(t, next())
		got[num(r["seq"])] = r
	}
	if r := got[float64(seqs[1])]; num(r["size"]) != 1 {
		t.Errorf("info after the first store: %v", r)
	}
	if r := got[float64(seqs[2])]; r["found"] != true {
		t.Errorf("drop: %v", r)
	}
	wantCode(got[float64(seqs[3])], wire.CodeNotFound)
	if r := got[float64(seqs[5])]; num(r["size"]) != 1 {
		t.Errorf("info after the store that made m3 afresh: %v", r)
	}
	// m4: made, filled, dropped; then a restart.
	send("m4", "create", map[string]any{"capacity": 10})
	send("m4", "store", map[string]any{"vector": []float64{1, 1, 1, 1}, "phase": 0.1, "id": "gone"})
	if res := send("m4", "drop", map[string]any{}); res["found"] != true {
		t.Fatalf("drop m4: %v", res)
	}
	e.stop()

	e2 := startEnvOn(t, srv, cfg)
	next = e2.sub("pelm.res.>")
	e = e2
	res = send("m1", "info", map[string]any{})
	conf, _ = res["config"].(map[string]any)
	if num(res["size"]) != 3 || num(conf["dim"]) != 8 || num(conf["capacity"]) != 3 || conf["eviction"] != "confidence" {
		t.Fatalf("m1 after a restart: %v", res)
	}
	wantCode(send("m4", "info", map[string]any{}), wire.CodeNotFound)
	if r := send("m3", "retrieve", map[string]any{"vector": []float64{1, 0, 0, 0}, "phase": 0.5, "top_k": 10}); len(r["matches"].([]any)) != 1 {
		t.Errorf("m3 after a restart holds %v, want only b", r["matches"])
	}
	// Once materialised, a dropped memory leaves nothing in the state.
	e2.stop()
	st, err := e2.js.Stream(context.Background(), durable.StateStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter("pelm.state.m.m4.>"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(info.State.Subjects); n != 0 {
		t.Errorf("the dropped memory m4 has %d subjects left in %s: %v", n, durable.StateStream, info.State.Subjects)
	}
}

// TestScrubbingMemory: a memory created with scrub replaces personal data
// in text (before it is scored) and in every string of meta (before it is
// stored and returned), and says how many it replaced.
func TestScrubbingMemory(t *testing.T) {
	e := startEnv(t, processor.Config{})
	next := e.sub("pelm.res.>")
	for _, enc := range []string{"msgpack", "json"} {
		t.Run(enc, func(t *testing.T) {
			mem := "pii-" + enc
			send := func(op string, body map[string]any) map[string]any {
				t.Helper()
				r := req{subject: "pelm.req." + mem + "." + op, body: mp(t, body)}
				if enc == "json" {
					r.body, r.headers = js(t, body), jsonHdr
				}
				e.publish(r)
				return result(t, next())
			}
			if res := send("create", map[string]any{"scrub": true}); res["ok"] != true {
				t.Fatal(res)
			}
			res := send("store", map[string]any{"vector": []float64{1, 0, 0, 0}, "phase": 0.5, "id": "x",
				"text": "write to ann@example.com or call +44 20 7946 0958, we help",
				"meta": map[string]any{"who": "ann@example.com", "ip": []any{"10.1.2.3", 7}, "note": "v1.2.3 on 2026-12-03"}})
			// The text scores one positive word: the markers count nothing.
			if res["ok"] != true || num(res["scrubbed"]) != 4 || num(res["moral"]) != 0.8+float64(one*0.05) {
				t.Fatalf("store: %v", res)
			}
			res = send("retrieve", map[string]any{"vector": []float64{1, 0, 0, 0}, "phase": 0.5})
			m := res["matches"].([]any)[0].(map[string]any)["meta"].(map[string]any)
			if m["who"] != "[email]" || m["ip"].([]any)[0] != "[ip]" || num(m["ip"].([]any)[1]) != 7 || m["note"] != "v1.2.3 on 2026-12-03" {
				t.Errorf("meta returned: %v", m)
			}
		})
	}
	// A memory without scrub keeps what it was given, and says nothing.
	e.publish(req{subject: "pelm.req.plain.store", body: mp(t, map[string]any{"vector": []float64{1, 0, 0, 0}, "phase": 0.5,
		"meta": "ann@example.com"})})
	if res := result(t, next()); res["scrubbed"] != nil {
		t.Errorf("a memory without scrub reports scrubbed: %v", res)
	}
}

// one is a float64 variable, so that the text score is computed at run
// time in float64, as the filter does.
var one = 1.0

// TestExpiry: items expire by stream time, by the memory's ttl or their
// own; an expired item is never matched nor counted, and a restart does not
// bring it back.
func TestExpiry(t *testing.T) {
	srv := startServer(t)
	cfg := processor.Config{Memory: pelm.Config{Dim: 4}}
	e := startEnvOn(t, srv, cfg)
	next := e.sub("pelm.res.>")
	send := func(op string, body map[string]any) map[string]any {
		t.Helper()
		e.publish(req{subject: "pelm.req.short." + op, body: mp(t, body)})
		return result(t, next())
	}
	ids := func(res map[string]any) []string {
		var out []string
		for _, m := range res["matches"].([]any) {
			out = append(out, m.(map[string]any)["id"].(string))
		}
		slices.Sort(out)
		return out
	}
	if res := send("create", map[string]any{"ttl": 0.3}); res["ok"] != true || num(res["config"].(map[string]any)["ttl"]) != 0.3 {
		t.Fatalf("create: %v", res)
	}
	v := []float64{1, 1, 1, 1}
	send("store", map[string]any{"vector": v, "phase": 0.5, "id": "a"})             // the memory's ttl
	send("store", map[string]any{"vector": v, "phase": 0.5, "id": "b", "ttl": 0})   // never
	send("store", map[string]any{"vector": v, "phase": 0.5, "id": "c", "ttl": 600}) // ten minutes
	all := map[string]any{"vector": v, "phase": 0.5, "top_k": 10}
	if got := ids(send("retrieve", all)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("before a's ttl: %v", got)
	}
	time.Sleep(400 * time.Millisecond) // stream time moves on
	if got := ids(send("retrieve", all)); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("after a's ttl: %v", got)
	}
	if res := send("info", map[string]any{}); num(res["size"]) != 2 {
		t.Errorf("info counts %v items, want 2", res["size"])
	}
	e.stop()
	e = startEnvOn(t, srv, cfg)
	next = e.sub("pelm.res.>")
	if got := ids(send("retrieve", all)); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("after a restart: %v", got)
	}
	e.stop()
	if snap := durableSnapshot(t, e.nc, cfg)["short"]; len(snap.Items) != 2 {
		t.Errorf("the durable state holds %d items, want 2", len(snap.Items))
	}
}

// TestBudget: a memory whose full capacity would pass --max-bytes is not
// created, by a create or by a first store; a drop frees its share.
func TestBudget(t *testing.T) {
	each := pelm.Config{Dim: 4, Capacity: 1000}.BytesAtCapacity()
	e := startEnv(t, processor.Config{Memory: pelm.Config{Dim: 4, Capacity: 1000}, MaxBytes: 2*each + each/2})
	next := e.sub("pelm.res.>")
	send := func(mem, op string, body map[string]any) map[string]any {
		t.Helper()
		e.publish(req{subject: "pelm.req." + mem + "." + op, body: mp(t, body)})
		return result(t, next())
	}
	store := map[string]any{"vector": []float64{1, 2, 3, 4}, "phase": 0.5}
	if res := send("b1", "store", store); res["ok"] != true {
		t.Fatalf("first memory: %v", res)
	}
	if res := send("b2", "create", map[string]any{}); res["ok"] != true {
		t.Fatalf("second memory: %v", res)
	}
	for _, tc := range []struct{ mem, op string }{{"b3", "store"}, {"b3", "create"}} {
		res := send(tc.mem, tc.op, store)
		if errMap, _ := res["error"].(map[string]any); errMap["code"] != "over_budget" {
			t.Errorf("a third memory by %s: %v", tc.op, res)
		}
	}
	if res := send("b3", "info", map[string]any{}); res["ok"] != false {
		t.Errorf("a memory refused over budget exists: %v", res)
	}
	send("b1", "drop", map[string]any{})
	if res := send("b3", "store", store); res["ok"] != true {
		t.Errorf("after a drop, a memory fits again: %v", res)
	}
}
