package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/pelm-dev/pelm/client"
	"github.com/pelm-dev/pelm/wire"
)

// TestEncodeDecodes checks that what Encode writes is what the server's
// decoder reads, in both encodings, with optional fields left out.
func TestEncodeDecodes(t *testing.T) {
	tests := []struct {
		name string
		req  client.Request
		want func(t *testing.T, r *wire.Request)
	}{
		{name: "store, all fields", req: client.StoreRequest{ID: "x", Vector: []float32{1, -2.5, 3, 4}, Phase: 0.25,
			Moral: client.Float(0.7), Text: "hi", Confidence: client.Float(0.9), Meta: map[string]any{"k": "v"}},
			want: func(t *testing.T, r *wire.Request) {
				if string(r.ID) != "x" || r.Moral != 0.7 || string(r.Text) != "hi" || r.Confidence != 0.9 || r.Phase != 0.25 ||
					r.Vector[1] != -2.5 || !r.Has(wire.HasMeta) {
					t.Errorf("decoded %+v", r)
				}
			}},
		{name: "store, defaults left out", req: client.StoreRequest{Vector: []float32{1, 0, 0, 0}},
			want: func(t *testing.T, r *wire.Request) {
				if r.Has(wire.HasID) || r.Has(wire.HasMoral) || r.Has(wire.HasText) || r.Has(wire.HasMeta) || r.Confidence != 1 {
					t.Errorf("decoded %+v", r)
				}
			}},
		{name: "retrieve", req: client.RetrieveRequest{Vector: []float32{0, 0, 0, 1}, Phase: 1, Tolerance: client.Float(0), TopK: 9,
			MinConfidence: 0.5, WithVectors: true},
			want: func(t *testing.T, r *wire.Request) {
				if !r.Has(wire.HasTolerance) || r.Tolerance != 0 || r.TopK != 9 || r.MinConfidence != 0.5 || !r.WithVectors {
					t.Errorf("decoded %+v", r)
				}
			}},
		{name: "retrieve, server defaults", req: client.RetrieveRequest{Vector: []float32{0, 0, 0, 1}},
			want: func(t *testing.T, r *wire.Request) {
				if r.Has(wire.HasTolerance) || r.Has(wire.HasTopK) || r.Tolerance != 0.15 || r.TopK != 5 {
					t.Errorf("decoded %+v", r)
				}
			}},
		{name: "forget", req: client.ForgetRequest{ID: "gone"},
			want: func(t *testing.T, r *wire.Request) {
				if string(r.ID) != "gone" {
					t.Errorf("decoded %+v", r)
				}
			}},
	}
	dec := wire.NewDecoder()
	for _, tc := range tests {
		for _, enc := range []wire.Encoding{wire.Msgpack, wire.JSON} {
			t.Run(tc.name+"/"+enc.ContentType(), func(t *testing.T) {
				body, err := client.Encode(tc.req, enc)
				if err != nil {
					t.Fatal(err)
				}
				r := &wire.Request{Vector: make([]float32, 0, 4)}
				var e *wire.Error
				if enc == wire.JSON {
					e = wire.DecodeJSON(body, 4, r)
				} else {
					e = dec.Decode(body, 4, r)
				}
				if e == nil {
					e = r.Validate(tc.req.Op(), wire.Defaults{Tolerance: 0.15, TopK: 5})
				}
				if e != nil {
					t.Fatalf("the server refuses %s: %v", body, e)
				}
				tc.want(t, r)
			})
		}
	}
}

// TestJSONClient runs the ops in JSON, where a match's meta comes back as
// the JSON that was sent.
func TestJSONClient(t *testing.T) {
	c, closeAll := connect(client.WithJSON())
	defer closeAll()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Store(ctx, "json", client.StoreRequest{ID: "j", Vector: []float32{0, 0, 1, 0}, Phase: 0.1,
		Meta: []any{"a", 1.5}}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Retrieve(ctx, "json", client.RetrieveRequest{Vector: []float32{0, 0, 1, 0}, Phase: 0.1, WithVectors: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 1 || res.Matches[0].ID != "j" || len(res.Matches[0].Vector) != 4 {
		t.Fatalf("matches %+v", res.Matches)
	}
	var meta []any
	if err := json.Unmarshal(res.Matches[0].Meta, &meta); err != nil || len(meta) != 2 || meta[0] != "a" || meta[1] != 1.5 {
		t.Errorf("meta %s: %v", res.Matches[0].Meta, err)
	}
	if res.Latency.Batch < 1 || res.Latency.TotalUS <= 0 || res.Seq == 0 {
		t.Errorf("latency or seq missing: %+v %d", res.Latency, res.Seq)
	}
}

// TestErrors: an unknown memory name fails before anything is sent; a
// deadline that passes gives the context's error; a closed client refuses.
func TestErrors(t *testing.T) {
	c, closeAll := connect()
	if _, err := c.Send("not a name", client.ForgetRequest{ID: "x"}); err == nil {
		t.Error("a bad memory name was sent")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if _, err := c.Forget(ctx, "m", client.ForgetRequest{ID: "x"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past the deadline: %v", err)
	}
	closeAll()
	if _, err := c.Send("m", client.ForgetRequest{ID: "x"}); !errors.Is(err, client.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
