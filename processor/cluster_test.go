package processor_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/internal/testcluster"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
)

// TestReplicas: with Replicas 3 on a three-node JetStream cluster, every
// stream and the consumer the processor creates are R3, and it serves;
// asked for R3 on a single server, Run fails at setup and says why.
func TestReplicas(t *testing.T) {
	url := testcluster.Start(t, 3).URL()
	pc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p, err := processor.New(pc, processor.Config{Memory: pelm.Config{Dim: 4}, Replicas: 3, StatsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// On a cluster just formed, placing four R3 streams and an R3
	// consumer takes elections: wait longer than eventually does, and say
	// why Run gave up if it did.
	for deadline := time.Now().Add(60 * time.Second); !p.Ready(); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-runErr:
			t.Fatalf("Run on the cluster ended before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the processor was not ready on the cluster within 60s")
		}
	}
	for _, name := range []string{wire.RequestsStream, wire.DLQStream, durable.StateStream, durable.JournalStream} {
		st, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if info := st.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas configured, cluster %+v", name, info.Config.Replicas, info.Cluster)
		}
	}
	st, err := js.Stream(context.Background(), wire.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	consumers := 0
	for ci := range st.ListConsumers(context.Background()).Info() {
		consumers++
		if r := ci.Config.Replicas; r != 3 {
			t.Errorf("consumer %s: %d replicas", ci.Name, r)
		}
	}
	if consumers != processor.DefaultPartitions+1 {
		t.Errorf("%d consumers, want one per partition and the catch-all's, %d", consumers, processor.DefaultPartitions+1)
	}
	sub, err := nc.SubscribeSync("pelm.res.r3.>")
	if err != nil {
		t.Fatal(err)
	}
	for i, op := range []string{"store", "retrieve"} {
		body := map[string]any{"vector": []float64{1, 2, 3, 4}, "phase": 0.5, "id": "x"}
		if _, err := js.Publish(context.Background(), "pelm.req.r3."+op, mp(t, body)); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("%s on R3: %v", op, err)
		}
		res := result(t, m)
		if res["ok"] != true || (i == 1 && len(res["matches"].([]any)) != 1) {
			t.Errorf("%s on R3: %v", op, res)
		}
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run: %v", err)
	}

	// One server cannot hold three replicas: Run says so at setup.
	single := startServer(t)
	sc, err := nats.Connect(single.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	p1, err := processor.New(sc, processor.Config{Memory: pelm.Config{Dim: 4}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	if err := p1.Run(rctx); !errors.Is(err, processor.ErrSetup) {
		t.Errorf("R3 on a single server: Run returned %v, want an ErrSetup", err)
	} else {
		t.Logf("R3 on a single server: %v", err)
	}
}
