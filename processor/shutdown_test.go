package processor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
	"github.com/rs/zerolog"
	"github.com/vmihailenco/msgpack/v5"
)

// TestShutdownLosesNothing stops the processor in the middle of a load and
// checks that every request either got its result or is still in the
// stream, never both and never neither; a second processor then answers
// the rest, with no request answered twice.
func TestShutdownLosesNothing(t *testing.T) {
	const n = 3000
	srv := startServer(t)
	// The default AckWait: requests pulled by the first processor come back
	// through the second one's recovery, not through redelivery. (A short
	// AckWait under a loaded CI machine let prefetched requests reach
	// MaxDeliver in the buffer and be dead-lettered.)
	cfg := processor.Config{Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	e := startEnvOn(t, srv, cfg)

	results := make(chan *nats.Msg, n+1)
	sub, err := e.nc.ChanSubscribe("pelm.res.>", results)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	body := mp(t, map[string]any{"vector": []float64{1, 2, 3, 4}, "phase": 0.5, "moral": 0.95})
	for i := 0; i < n; i++ {
		if _, err := e.js.PublishAsync("pelm.req.m.store", body); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishes not acknowledged")
	}
	eventually(t, "some results arrived", func() bool { return len(results) >= 200 })
	e.stop()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	answered := map[uint64]int{}
	collect := func(quiet time.Duration) {
		for {
			select {
			case m := <-results:
				var r struct {
					Seq uint64 `msgpack:"seq"`
					OK  bool   `msgpack:"ok"`
				}
				if err := msgpack.Unmarshal(m.Data, &r); err != nil || !r.OK {
					js, _ := wire.BodyJSON(m.Data, "")
					t.Fatalf("bad result %s: %v", js, err)
				}
				answered[r.Seq]++
			case <-time.After(quiet):
				return
			}
		}
	}
	collect(200 * time.Millisecond)
	first := len(answered)
	if first == n {
		t.Fatal("the processor answered everything before it was stopped: the test proved nothing")
	}
	st, err := e.js.Stream(context.Background(), wire.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= n; seq++ {
		_, err := st.GetMsg(context.Background(), seq)
		inStream := err == nil
		if err != nil && err != jetstream.ErrMsgNotFound {
			t.Fatal(err)
		}
		if answered[seq] > 0 == inStream {
			t.Fatalf("seq %d: answered %d times, still in the stream %v", seq, answered[seq], inStream)
		}
	}

	startEnvOn(t, srv, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for len(answered) < n && time.Now().Before(deadline) {
		collect(100 * time.Millisecond)
	}
	if len(answered) != n {
		t.Fatalf("%d of %d requests answered after the restart", len(answered), n)
	}
	collect(time.Second) // a second answer may still be on its way
	for seq, c := range answered {
		if c != 1 {
			t.Errorf("seq %d answered %d times", seq, c)
		}
	}
	t.Logf("first processor answered %d, the second %d", first, n-first)
}

// TestConsumersDeletedAreMadeAgain deletes every consumer of a running
// processor: each partition notices, takes itself over again with a new
// consumer, and requests are answered as before.
func TestConsumersDeletedAreMadeAgain(t *testing.T) {
	srv := startServer(t)
	pc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p, err := processor.New(pc, processor.Config{Memory: pelm.Config{Dim: 4}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	eventually(t, "the consumer exists", func() bool {
		return processor.Serving(ctx, js)
	})
	st, err := js.Stream(ctx, wire.RequestsStream)
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for name := range st.ConsumerNames(ctx).Name() {
		if err := st.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if deleted != processor.DefaultPartitions+1 {
		t.Fatalf("deleted %d consumers, want %d", deleted, processor.DefaultPartitions+1)
	}
	res, err := nc.SubscribeSync("pelm.res.again.store")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"vector": []float32{1, 2, 3, 4}, "phase": 0.5, "moral": 0.95})
	msg := nats.NewMsg("pelm.req.again.store")
	msg.Data = body
	msg.Header.Set("Content-Type", "application/json")
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	got, err := res.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no result after the consumers were deleted: %v", err)
	}
	if !bytes.Contains(got.Data, []byte(`"ok":true`)) {
		t.Errorf("result %s", got.Data)
	}
	select {
	case err := <-ran:
		t.Fatalf("Run ended: %v", err)
	default:
	}

}
