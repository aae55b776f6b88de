package client_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
)

// natsURL is where the tests' NATS server, with a pelm processor of
// dimension 4 behind it, listens.
var natsURL string

// TestMain runs one NATS server and one processor for the package's tests
// and examples, as `pelm serve` would.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pelm-client-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	opts := natstest.DefaultTestOptions
	opts.Port, opts.JetStream, opts.StoreDir = -1, true, dir
	srv := natstest.RunServer(&opts)
	defer srv.Shutdown()
	natsURL = srv.ClientURL()

	pc, err := nats.Connect(natsURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pc.Close()
	p, err := processor.New(pc, processor.Config{Memory: pelm.Config{Dim: 4}, StatsInterval: time.Hour,
		Batch: batcher.Config{MaxSize: 64, MaxWait: time.Millisecond}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.Run(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "processor:", err)
		}
	})
	defer func() { cancel(); wg.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); !p.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "processor not ready")
			return 1
		}
	}
	return m.Run()
}
