// Package client is the typed Go client of pelm: it publishes requests
// through JetStream and returns their results as wire.Result.
//
//	nc, _ := nats.Connect(nats.DefaultURL)
//	c, _ := client.New(nc)
//	defer c.Close()
//	res, err := c.Store(ctx, "notes", client.StoreRequest{ID: "a", Vector: v, Phase: 0.5})
//
// Every request carries a reply subject of its own, under the client's
// inbox (Pelm-Reply-To), so a result is matched to its request whatever the
// order results come in, and Send puts many requests in flight at once:
// each Call then waits for the server's acknowledgement of the publish
// (the request is durable from then on) and for the result. A request the
// server refused comes back with its *wire.Error; errors.Is(err,
// wire.ErrBadDimension) and the like tell them apart. MsgID sets the
// request's Nats-Msg-Id, so that publishing it again within two minutes is
// dropped (ErrDuplicate).
//
// Requests are msgpack by default, vectors as bins of little-endian
// float32; WithJSON sends JSON. Encode gives a request's body for programs
// that publish it themselves.
//
// A Client is safe for concurrent use. It links nats.go, msgpack and wire
// only: not the server, Prometheus or the retrieval kernel.
package client
