package bench

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
)

// TestPurgePartitioned: after a step that was not sustainable, the purge
// empties pelm's requests stream of the run's memories, which the
// stream's subject transform files under pelm.part.<n>.<memory>.<op>, and
// leaves another memory's requests alone.
func TestPurgePartitioned(t *testing.T) {
	opts := natstest.DefaultTestOptions
	opts.Port, opts.JetStream, opts.StoreDir = -1, true, t.TempDir()
	s := natstest.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	// A processor makes the partitioned stream, then stops: what is
	// published next stays in the stream.
	p, err := processor.New(nc, processor.Config{Memory: pelm.Config{Dim: 8}, StatsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Run(ctx) })
	for deadline := time.Now().Add(10 * time.Second); !processor.Serving(context.Background(), js); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the processor did not serve within 10s")
		}
	}
	cancel()
	wg.Wait()

	for _, subj := range []string{"pelm.req.bench-0.store", "pelm.req.bench-1.retrieve", "pelm.req.bench-1.store", "pelm.req.other.store"} {
		if _, err := js.Publish(context.Background(), subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	r, err := newRunner(nc, Config{Memories: 2, Dim: 8, Preload: NoPreload}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	st := newStep(1, sysPelm, KindRate, 100, 3, time.Second)
	r.purge(st, 3)
	if len(r.rep.Notes) > 0 {
		t.Fatalf("purge: %v", r.rep.Notes)
	}
	if st.purged != 3 {
		t.Errorf("purged %d, want 3", st.purged)
	}
	stream, err := js.Stream(context.Background(), processorStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background(), jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || len(info.State.Subjects) != 1 {
		t.Fatalf("the stream holds %d messages on %v, want only the other memory's one", info.State.Msgs, info.State.Subjects)
	}
	for subj := range info.State.Subjects {
		if subj != "pelm.part."+strconv.Itoa(durable.Partition("other", processor.DefaultPartitions))+".other.store" {
			t.Errorf("left %s, want the other memory's request", subj)
		}
	}
}
