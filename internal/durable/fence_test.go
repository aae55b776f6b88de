package durable

import (
	"context"
	"errors"
	"testing"
	"time"

	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
)

// TestFence has two stores claim one partition in turn, as two processes
// do when one takes over from the other: once the second has fenced it,
// the server refuses every write of the first (its journal record, its
// state commit, its recovery marker) and accepts the second's.
func TestFence(t *testing.T) {
	opts := natstest.DefaultTestOptions
	opts.Port, opts.JetStream, opts.StoreDir = -1, true, t.TempDir()
	srv := natstest.RunServer(&opts)
	defer srv.Shutdown()
	connect := func() (*nats.Conn, jetstream.JetStream) {
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc1, js1 := connect()
	nc2, js2 := connect()
	cfg := Config{Prefix: "fence", Partition: 3, MaterializeEvery: time.Hour}
	old, next := New(nc1, js1, cfg), New(nc2, js2, cfg)
	if err := old.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	entry := func(seq uint64) []Entry {
		return []Entry{{Seq: seq, Memory: "m", Decided: true, Filter: filter.State{Threshold: 0.5, EMA: 0.5},
			Kind: KindStore, ID: "a", Vector: []float32{1, 0}, Phase: 0.5, Confidence: 1,
			Result: Result{Subject: "fence.res.m.store", Body: []byte("r")}}}
	}

	if err := old.Fence(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if err := old.Append(ctx, entry(1)); err != nil {
		t.Fatalf("the owner's own journal write: %v", err)
	}
	if err := old.WriteMarker(ctx, Marker{}); err != nil {
		t.Fatalf("the owner's own marker: %v", err)
	}
	if err := old.materialize(true); err != nil {
		t.Fatalf("the owner's own state commit: %v", err)
	}

	// Another process takes the partition over.
	if err := next.Fence(ctx, "next"); err != nil {
		t.Fatal(err)
	}
	if err := old.Append(ctx, entry(2)); !errors.Is(err, ErrFenced) {
		t.Errorf("journal write after the takeover: %v, want ErrFenced", err)
	}
	if !old.Fenced() {
		t.Error("the fenced store does not say so")
	}
	if err := old.WriteMarker(ctx, Marker{From: 2}); !errors.Is(err, ErrFenced) {
		t.Errorf("marker write after the takeover: %v, want ErrFenced", err)
	}
	// A state commit queued before the takeover, sent after it.
	old.fenced.Store(false) // as if the journal write had not told it yet
	old.queue(&entry(3)[0], appendVector(nil, []float32{1, 0}), journalMark{Record: 99, Entries: 1})
	if err := old.materialize(true); !errors.Is(err, ErrFenced) {
		t.Errorf("state commit after the takeover: %v, want ErrFenced", err)
	}

	// The new owner writes as it pleases.
	if err := next.Append(ctx, entry(4)); err != nil {
		t.Errorf("the new owner's journal write: %v", err)
	}
	if err := next.WriteMarker(ctx, Marker{}); err != nil {
		t.Errorf("the new owner's marker: %v", err)
	}
	if err := next.materialize(true); err != nil {
		t.Errorf("the new owner's state commit: %v", err)
	}
	// What reached the journal: the old owner's first record, the new
	// owner's record, and nothing of the old owner after the takeover.
	st, err := js2.Stream(ctx, JournalStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("fence.journal.3"))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects["fence.journal.3"]; n != 2 {
		t.Errorf("the partition's journal holds %d records, want 2 (one per owner)", n)
	}
}
