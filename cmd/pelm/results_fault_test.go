package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// TestFaultResultsStream keeps results in a stream, as a user who binds
// one to pelm.res.<memory>.> does, with the embedded server of `pelm serve`
// (so that kill -9 kills the server too), and kills pelm with SIGKILL just
// after it acknowledged a batch, or at a random point, then restarts it on
// the same data directory. Every request must end with exactly one result
// in the results stream: an acknowledged request's result must have been
// stored before the acknowledgement.
func TestFaultResultsStream(t *testing.T) {
	runs := 6
	if testing.Short() {
		runs = 2
	}
	if n, err := strconv.Atoi(os.Getenv("PELM_TEST_RUNS")); err == nil && n > 0 {
		runs = n // for looping it by hand
	}
	for run := range runs {
		seed := uint64(run + 1)
		rng := rand.New(rand.NewPCG(seed, 16))
		point := processor.HookAfterAck
		if run%2 == 1 {
			point = []string{processor.HookAfterPull, processor.HookAfterPersist, processor.HookAfterPublish,
				processor.HookBeforeAck, processor.HookAfterAck}[rng.IntN(5)]
		}
		crash := point + ":" + strconv.Itoa(1+rng.IntN(12))
		t.Run(fmt.Sprintf("%d/%s", run, crash), func(t *testing.T) { resultsStreamRun(t, crash) })
	}
}

func resultsStreamRun(t *testing.T, crash string) {
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--dim", strconv.Itoa(faultDim), "--batch-max", "32", "--stats-interval", "1h", "--http-listen", ""}
	srv := startServed(t, []string{"PELM_TEST_CRASH=" + crash}, args...)
	nc := connectRetry(t, srv.url)
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RESULTS", Subjects: []string{"pelm.res.dur.>"},
		Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "pelm's consumer", func() bool {
		return processor.Serving(ctx, js)
	})
	// A burst of stores, each with its id, published as fast as they go.
	const n = 1200
	var futs []jetstream.PubAckFuture
	for i := range n {
		body, _ := msgpack.Marshal(map[string]any{"vector": []float32{1, float32(i), 2, 3, 4, 5, 6, 7}, "phase": 0.5,
			"id": "d" + strconv.Itoa(i), "moral": 0.95})
		msg := nats.NewMsg("pelm.req.dur.store")
		msg.Data = body
		msg.Header.Set(wire.HeaderMsgID, "dur-"+strconv.Itoa(i))
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			// pelm, and its embedded server, died under the burst (at an
			// early crash point): the rest of the burst was never stored.
			break
		}
		futs = append(futs, f)
	}
	// Which requests the server stored before pelm (and it) died: one
	// wait for all the acknowledgements, since those the dead server owes
	// never come.
	stored := map[uint64]bool{}
	acksBy := time.After(10 * time.Second)
wait:
	for _, f := range futs {
		select {
		case ack := <-f.Ok():
			stored[ack.Sequence] = true
		case <-f.Err():
		case <-acksBy:
			break wait
		}
	}
	select {
	case err := <-srv.exited:
		if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("pelm ended with %v, not by its own SIGKILL\n%s", err, srv.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("pelm did not crash at %s\n%s", crash, srv.logs)
	}
	nc.Close()
	srv = startServed(t, nil, args...)
	nc = connectRetry(t, srv.url)
	defer nc.Close()
	if js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	// Wait until every stored request is out of the requests stream and the
	// results stream has stopped growing for two seconds.
	var last, pending uint64
	still := time.Now()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rs, err1 := js.Stream(ctx, wire.RequestsStream)
		res, err2 := js.Stream(ctx, "RESULTS")
		if err1 == nil && err2 == nil {
			if got := res.CachedInfo().State.Msgs; got != last {
				last, still = got, time.Now()
			}
			pending = rs.CachedInfo().State.Msgs
			if pending == 0 && time.Since(still) > 2*time.Second {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s, %d requests still in the stream, %d results\n%s", pending, last, srv.logs)
		}
	}
	// Read the results stream (the embedded server stops with pelm): one result per request, no more, no fewer.
	per := map[uint64]int{}
	res, err := js.Stream(ctx, "RESULTS")
	if err != nil {
		t.Fatal(err)
	}
	for seq := res.CachedInfo().State.FirstSeq; seq <= res.CachedInfo().State.LastSeq; seq++ {
		m, err := res.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("results stream message %d: %v", seq, err)
		}
		s, err := strconv.ParseUint(m.Header.Get(wire.HeaderSeq), 10, 64)
		if err != nil {
			t.Fatalf("a result without %s", wire.HeaderSeq)
		}
		per[s]++
	}
	_ = srv.cmd.Process.Signal(syscall.SIGTERM)
	<-srv.exited
	// Requests the server stored whose PubAck died with it have results
	// too; every request with a result must have exactly one.
	missing, doubled := 0, 0
	for seq := range stored {
		if per[seq] == 0 {
			missing++
		}
	}
	for _, k := range per {
		if k > 1 {
			doubled++
		}
	}
	if missing > 0 || doubled > 0 {
		t.Fatalf("%d requests acknowledged by the server: %d without a result in the results stream; of %d requests with results, %d have more than one\n%s",
			len(stored), missing, len(per), doubled, srv.logs)
	}
	t.Logf("%d requests acknowledged, %d with results, each exactly one", len(stored), len(per))
}

// connectRetry connects to url, retrying while the server starts.
func connectRetry(t *testing.T, url string) *nats.Conn {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err == nil {
			return nc
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect to %s: %v", url, err)
		}
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
