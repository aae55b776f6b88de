package processor_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
)

// legacify turns a prefix into what the version before partitions left:
// a requests stream without the subject transform, and that version's
// consumer pelm-processor on all of it.
func legacify(t *testing.T, js jetstream.JetStream) jetstream.Consumer {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, wire.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	for name := range st.ConsumerNames(ctx).Name() {
		if err := st.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	cfg := st.CachedInfo().Config
	cfg.SubjectTransform = nil
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, wire.RequestsStream, jetstream.ConsumerConfig{Durable: processor.ConsumerName,
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "pelm.req.>"})
	if err != nil {
		t.Fatal(err)
	}
	return cons
}

// TestMigrateFromOneProcessor starts this version on a prefix that the
// version before partitions served: its memories are kept, the requests it
// left in the stream run first, in stream order, and its consumer is gone.
func TestMigrateFromOneProcessor(t *testing.T) {
	srv := startServer(t)
	cfg := processor.Config{}
	e := startEnvOn(t, srv, cfg)
	next := e.sub("pelm.res.>")
	store := func(id string) {
		e.publish(req{subject: "pelm.req.old.store", body: mp(t, map[string]any{"vector": []float64{1, 0, 0, 1}, "phase": 0.5, "id": id, "moral": 0.95})})
	}
	for i := range 3 {
		store("kept" + strconv.Itoa(i))
		result(t, next())
	}
	e.stop()

	nc, js := connectJS(t, srv)
	legacify(t, js)
	// Requests the old processor never got to, stored unpartitioned.
	ctx := context.Background()
	for i := range 3 {
		body := mp(t, map[string]any{"vector": []float64{1, 0, 0, 1}, "phase": 0.5, "id": "left" + strconv.Itoa(i), "moral": 0.95})
		if _, err := js.Publish(ctx, "pelm.req.old.store", body); err != nil {
			t.Fatal(err)
		}
	}

	// Subscribed before the new version starts: it runs the requests left
	// behind before it consumes.
	sub, err := nc.SubscribeSync("pelm.res.old.store")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e = startEnvOn(t, srv, cfg)
	store("new")
	res := map[string]bool{}
	for range 4 {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("results so far %v: %v", res, err)
		}
		r := result(t, m)
		res[r["id"].(string)] = r["ok"] == true
	}
	for _, id := range []string{"left0", "left1", "left2", "new"} {
		if !res[id] {
			t.Errorf("no ok result for %s: %v", id, res)
		}
	}
	e.stop()
	snap := durableSnapshot(t, e.nc, cfg)["old"]
	var ids []string
	for _, it := range snap.Items {
		ids = append(ids, it.ID)
	}
	want := []string{"kept0", "kept1", "kept2", "left0", "left1", "left2", "new"}
	if len(ids) != len(want) {
		t.Fatalf("memory holds %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("memory holds %v, want %v (stream order)", ids, want)
		}
	}
	if _, err := js.Consumer(ctx, wire.RequestsStream, processor.ConsumerName); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the old processor's consumer: %v, want it deleted", err)
	}
}

// TestMigrateRefusesWhileTheOldRuns checks that this version will not
// start beside a processor of the version before partitions that holds
// requests: they would split the memories.
func TestMigrateRefusesWhileTheOldRuns(t *testing.T) {
	srv := startServer(t)
	e := startEnvOn(t, srv, processor.Config{})
	e.stop()
	_, js := connectJS(t, srv)
	old := legacify(t, js)
	ctx := context.Background()
	if _, err := js.Publish(ctx, "pelm.req.m.store", mp(t, map[string]any{"vector": []float64{1, 0, 0, 1}, "phase": 0.5})); err != nil {
		t.Fatal(err)
	}
	// The old processor pulled it and has not acked it.
	batch, err := old.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}
	pc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p, err := processor.New(pc, processor.Config{Memory: pelm.Config{Dim: 4}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Run(rctx); !errors.Is(err, processor.ErrLegacy) {
		t.Fatalf("Run beside the old processor: %v, want ErrLegacy", err)
	} else {
		t.Logf("Run: %v", err)
	}
	st, err := js.Stream(ctx, wire.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	if tr := st.CachedInfo().Config.SubjectTransform; tr != nil {
		t.Errorf("the stream was partitioned anyway: %+v", tr)
	}
}

// connectJS connects a client of the test's own to srv.
func connectJS(t testing.TB, srv *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
