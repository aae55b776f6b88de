package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pelm-dev/pelm/client"
	"github.com/pelm-dev/pelm/wire"
)

// connect opens a client on the tests' server (natsURL; nats.DefaultURL
// with a local `pelm serve`).
func connect(opts ...client.Option) (*client.Client, func()) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(nc, opts...)
	if err != nil {
		log.Fatal(err)
	}
	return c, func() { _ = c.Close(); nc.Close() }
}

func Example() {
	c, closeAll := connect()
	defer closeAll()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := c.Store(ctx, "example", client.StoreRequest{ID: "rain", Vector: []float32{1, 0, 0, 0}, Phase: 0.5,
		Meta: map[string]string{"text": "it rains"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", res.ID, "accepted:", res.Accepted)

	res, err = c.Retrieve(ctx, "example", client.RetrieveRequest{Vector: []float32{1, 0.1, 0, 0}, Phase: 0.5})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range res.Matches {
		var meta map[string]string
		if err := m.Meta.Decode(wire.Msgpack, &meta); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("found %s (%.3f): %s\n", m.ID, m.Score, meta["text"])
	}
	// Output:
	// stored rain accepted: true
	// found rain (0.995): it rains
}

func ExampleClient_Process() {
	c, closeAll := connect()
	defer closeAll()
	ctx := context.Background()

	res, err := c.Process(ctx, "example-process", client.ProcessRequest{ID: "e1", Vector: []float32{0, 1, 0, 0}, Phase: 0.2,
		Text: "we help and support each other"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("moral %.2f, threshold %.2f, accepted %v, context %d\n", res.Moral, res.Threshold, res.Accepted, len(res.Matches))

	res, err = c.Process(ctx, "example-process", client.ProcessRequest{ID: "e2", Vector: []float32{0, 1, 0, 0}, Phase: 0.2,
		Text: "attack and destroy, kill"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("moral %.2f, accepted %v, reason %s\n", res.Moral, res.Accepted, res.Reason)
	// Output:
	// moral 0.90, threshold 0.50, accepted true, context 0
	// moral 0.35, accepted false, reason moral
}

func ExampleClient_Forget() {
	c, closeAll := connect()
	defer closeAll()
	ctx := context.Background()

	if _, err := c.Store(ctx, "example-forget", client.StoreRequest{ID: "a", Vector: []float32{1, 2, 3, 4}, Phase: 1}); err != nil {
		log.Fatal(err)
	}
	res, err := c.Forget(ctx, "example-forget", client.ForgetRequest{ID: "a"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("found:", res.Found)
	res, err = c.Forget(ctx, "example-forget", client.ForgetRequest{ID: "a"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("found again:", res.Found)
	// Output:
	// found: true
	// found again: false
}

// An error result comes back with its *wire.Error; errors.Is tells its code.
func ExampleClient_Do_error() {
	c, closeAll := connect()
	defer closeAll()

	_, err := c.Store(context.Background(), "example", client.StoreRequest{Vector: []float32{1, 2}, Phase: 0.5})
	fmt.Println(errors.Is(err, wire.ErrBadDimension))
	fmt.Println(err)
	// Output:
	// true
	// bad_dimension: vector: bin of 8 bytes, want 4 float32 (16 bytes)
}

// Send puts many requests in flight; each Call waits for its own result.
func ExampleClient_Send() {
	c, closeAll := connect()
	defer closeAll()
	ctx := context.Background()

	var calls []*client.Call
	for i := range 100 {
		call, err := c.Send("example-send", client.StoreRequest{ID: fmt.Sprint("item-", i), Vector: []float32{1, float32(i), 0, 0}, Phase: 0.5,
			Moral: client.Float(0.95)}) // at 0.9 or more the filter always accepts
		if err != nil {
			log.Fatal(err)
		}
		calls = append(calls, call)
	}
	stored := 0
	for _, call := range calls {
		res, err := call.Result(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if res.Accepted {
			stored++
		}
	}
	fmt.Println("stored", stored)
	// Output:
	// stored 100
}

// MsgID makes a request idempotent: the same id again within two minutes
// is dropped by JetStream.
func ExampleMsgID() {
	c, closeAll := connect()
	defer closeAll()
	ctx := context.Background()

	req := client.StoreRequest{ID: "once", Vector: []float32{1, 1, 1, 1}, Phase: 0.5}
	res, err := c.Store(ctx, "example-msgid", req, client.MsgID("order-42"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("req_id:", res.ReqID)
	_, err = c.Store(ctx, "example-msgid", req, client.MsgID("order-42"))
	fmt.Println(errors.Is(err, client.ErrDuplicate))
	// Output:
	// req_id: order-42
	// true
}

// A memory of its own settings: a dimension and capacity of its own,
// confidence eviction, a fixed filter threshold.
func ExampleClient_Create() {
	c, closeAll := connect()
	defer closeAll()
	ctx := context.Background()

	res, err := c.Create(ctx, "example-create", client.CreateRequest{Dim: 2, Capacity: 100, Eviction: "confidence",
		FilterThreshold: client.Float(0.6), FilterAdaptive: client.Bool(false)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", *res.Config)
	if _, err := c.Store(ctx, "example-create", client.StoreRequest{ID: "p", Vector: []float32{3, 4}, Phase: 0}); err != nil {
		log.Fatal(err)
	}
	res, err = c.Info(ctx, "example-create")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("size", res.Size, "threshold", res.Threshold)

	_, err = c.Create(ctx, "example-create", client.CreateRequest{Dim: 3})
	fmt.Println(errors.Is(err, wire.ErrExists))

	res, err = c.Drop(ctx, "example-create")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("dropped:", res.Found)
	_, err = c.Info(ctx, "example-create")
	fmt.Println(errors.Is(err, wire.ErrNotFound))
	// Output:
	// {Dim:2 Capacity:100 Eviction:confidence FilterThreshold:0.6 FilterAdaptive:false Scrub:false TTL:0}
	// size 1 threshold 0.6
	// true
	// dropped: true
	// true
}
