package processor_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
	"github.com/rs/zerolog"
)

// TestCrashReplaysJournal kills a processor (its connection closed, no
// shutdown) after its per-item state has been materialised for some
// requests and not for later ones. Epochs are sealed by size only (600
// messages), so which requests are materialised does not depend on time. The journal must bring the memory back
// exactly: the same items in the same order (so the same eviction future),
// with the journal purged behind what was materialised.
func TestCrashReplaysJournal(t *testing.T) {
	const capacity = 30
	srv := startServer(t)
	cfg := processor.Config{Memory: pelm.Config{Dim: 4, Capacity: capacity}, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)}
	e, crash := startCrashable(t, srv, cfg, "", func(p *processor.Processor) { processor.SetMaterializeEvery(p, time.Hour) })
	nc := e.nc
	next := e.sub("pelm.res.>")

	var ref []string // ids, oldest first, as one-by-one execution leaves them
	remove := func(id string) {
		for i, x := range ref {
			if x == id {
				ref = append(ref[:i], ref[i+1:]...)
				return
			}
		}
	}
	n := 0
	wave := func(count int) {
		want := map[string]bool{} // the wave's stream sequences: results of earlier requests may come between
		for range count {
			n++
			id := "i" + strconv.Itoa(n%45) // upserts once the ids come round
			if n%9 == 0 {
				want[strconv.FormatUint(e.publish(req{subject: "pelm.req.m.forget", body: mp(t, map[string]any{"id": "i" + strconv.Itoa((n-4)%45)})}), 10)] = true
				remove("i" + strconv.Itoa((n-4)%45))
				continue
			}
			v := []float64{float64(n % 7), 1, float64(n % 3), -1}
			want[strconv.FormatUint(e.publish(req{subject: "pelm.req.m.store", body: mp(t, map[string]any{"id": id, "vector": v, "phase": float64(n%10) / 10, "moral": 0.95})}), 10)] = true
			remove(id)
			if len(ref) == capacity {
				ref = ref[1:]
			}
			ref = append(ref, id)
		}
		for len(want) > 0 {
			m := next()
			result(t, m)
			delete(want, m.Header.Get(wire.HeaderSeq))
		}
	}
	wave(400) // about 700 state messages: the first 600 or so are sealed and committed
	jst, err := e.js.Stream(context.Background(), durable.JournalStream)
	if err != nil {
		t.Fatal(err)
	}
	// Each partition wrote its fence first, before any record.
	fences, err := jst.Info(context.Background(), jetstream.WithSubjectFilter("pelm.journal.*.fence"))
	if err != nil {
		t.Fatal(err)
	}
	firstRecord := uint64(len(fences.State.Subjects)) + 1
	eventually(t, "the journal purged behind the materialised state", func() bool {
		raw, err := jst.GetMsg(context.Background(), 1, jetstream.WithGetMsgSubject("pelm.journal.*"))
		return errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && raw.Sequence > firstRecord
	})
	wave(50) // journalled; with the rest of the 400, under 600 messages: not sealed
	crash()

	p, err := processor.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := p.Restore()
	if err != nil {
		t.Fatal(err)
	}
	if info.Replayed == 0 || info.Items == 0 {
		t.Fatalf("restore %+v: want items from the per-item state and entries replayed from the journal", info)
	}
	got := p.Snapshot()["m"].Items
	if len(got) != len(ref) {
		t.Fatalf("restored %d items, want %d", len(got), len(ref))
	}
	for i, it := range got {
		if it.ID != ref[i] {
			t.Fatalf("item %d is %s, want %s (restore %+v)", i, it.ID, ref[i], info)
		}
	}

	// A successor picks up from there, replaying the journal too; what it
	// materialises on its way out is the same memory again.
	e2 := startEnvOn(t, srv, cfg)
	next = e2.sub("pelm.res.>")
	e = e2
	wave(20)
	e2.stop()
	got = durableSnapshot(t, nc, cfg)["m"].Items
	if len(got) != len(ref) {
		t.Fatalf("after the successor: %d items, want %d", len(got), len(ref))
	}
	for i, it := range got {
		if it.ID != ref[i] {
			t.Fatalf("after the successor: item %d is %s, want %s", i, it.ID, ref[i])
		}
	}
}
