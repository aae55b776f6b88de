package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/client"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
)

// BenchmarkFailover measures what a kill -9 of an owner costs its
// memories: two `pelm serve` processes (default --lease and --ack-wait) on
// one server serve n memories of 20,000 items of 384 dimensions; the owner
// of memory m0 is killed, a retrieve goes to each of its memories at once,
// and the time from the kill to the first and to the last of their results
// is reported (s-first, s-all), with the partitions and items moved. One
// run is one failover; run it with -benchtime 1x.
//
//	go test -run '^$' -bench 'Failover/memories=16$' -benchtime 1x ./cmd/pelm/
func BenchmarkFailover(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("memories=%d", n), func(b *testing.B) {
			for range b.N {
				benchFailover(b, n)
			}
		})
	}
}

const (
	failoverItems = 20000
	failoverDim   = 384
)

func benchFailover(b *testing.B, memories int) {
	b.StopTimer()
	opts := natstest.DefaultTestOptions
	opts.Port, opts.JetStream, opts.StoreDir = -1, true, b.TempDir()
	srv := natstest.RunServer(&opts)
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	bin := pelmBinary(b)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--nats-url", srv.ClientURL(), "--dim", strconv.Itoa(failoverDim),
			"--capacity", strconv.Itoa(failoverItems), "--stats-interval", "1h", "--log-level", logLevel("warn"), "--http-listen", "")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	procs := []*exec.Cmd{start(), start()}
	ctx := context.Background()
	for deadline := time.Now().Add(60 * time.Second); !processor.Serving(ctx, js); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the processes did not serve within 60s")
		}
	}
	names := make([]string, memories)
	for i := range names {
		names[i] = "m" + strconv.Itoa(i)
	}
	fill(b, js, names)
	cl, err := client.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	for _, m := range names {
		waitSize(b, cl, m, failoverItems)
	}

	// The owner of m0, and every memory it serves.
	owners := partitionOwners(b, js)
	victimPID := owners[durable.Partition("m0", processor.DefaultPartitions)]
	var victims []string
	parts := map[int]bool{}
	for _, m := range names {
		if k := durable.Partition(m, processor.DefaultPartitions); owners[k] == victimPID {
			victims = append(victims, m)
			parts[k] = true
		}
	}
	var victim *exec.Cmd
	for _, p := range procs {
		if p.Process.Pid == victimPID {
			victim = p
		}
	}
	if victim == nil {
		b.Fatalf("no process has pid %d", victimPID)
	}
	q := make([]float32, failoverDim)
	q[0] = 1
	b.StartTimer()
	killed := time.Now()
	_ = victim.Process.Kill()
	calls := make([]*client.Call, len(victims))
	for i, m := range victims {
		if calls[i], err = cl.Send(m, client.RetrieveRequest{Vector: q, Phase: 0.5, TopK: 1}); err != nil {
			b.Fatal(err)
		}
	}
	var first, last time.Duration
	for i, c := range calls {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		res, err := c.Result(rctx)
		cancel()
		if err != nil || !res.OK {
			b.Fatalf("retrieve of %s after the kill: %v %+v", victims[i], err, res)
		}
		d := time.Since(killed)
		if first == 0 || d < first {
			first = d
		}
		last = max(last, d)
	}
	b.StopTimer()
	b.ReportMetric(first.Seconds(), "s-first")
	b.ReportMetric(last.Seconds(), "s-all")
	b.ReportMetric(float64(len(victims)), "memories-moved")
	b.ReportMetric(float64(len(parts)), "partitions-moved")
	b.ReportMetric(float64(len(victims)*failoverItems), "items-moved")
}

// fill stores failoverItems random vectors in each memory, as fast as
// JetStream takes them; nobody reads the results.
func fill(b *testing.B, js jetstream.JetStream, names []string) {
	rng := rand.New(rand.NewPCG(1, 2))
	moral := 0.95
	vec := make([]float32, failoverDim)
	for i := range failoverItems {
		for _, m := range names {
			for j := range vec {
				vec[j] = float32(rng.NormFloat64())
			}
			body, err := client.Encode(client.StoreRequest{ID: strconv.Itoa(i), Vector: vec, Phase: rng.Float64(), Moral: &moral}, wire.Msgpack)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := js.PublishAsync("pelm.req."+m+".store", body); err != nil {
				b.Fatal(err)
			}
		}
		if i%64 == 63 {
			<-js.PublishAsyncComplete() // keep within the async window
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("stores not acknowledged within 5 minutes")
	}
}

// waitSize waits until a memory holds n items.
func waitSize(b *testing.B, cl *client.Client, memory string, n int) {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := cl.Info(ctx, memory)
		cancel()
		if err == nil && res.Size == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("memory %s: %v %+v, want %d items", memory, err, res, n)
		}
		time.Sleep(time.Second)
	}
}

// partitionOwners maps each partition to the pid of the process serving it.
func partitionOwners(b *testing.B, js jetstream.JetStream) map[int]int {
	ctx := context.Background()
	members, err := js.KeyValue(ctx, processor.MembersBucket)
	if err != nil {
		b.Fatal(err)
	}
	owners, err := js.KeyValue(ctx, processor.OwnersBucket)
	if err != nil {
		b.Fatal(err)
	}
	pids := map[string]int{}
	keys, err := members.ListKeys(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for k := range keys.Keys() {
		e, err := members.Get(ctx, k)
		if err != nil {
			continue
		}
		var m struct {
			PID int `json:"pid"`
		}
		if json.Unmarshal(e.Value(), &m) == nil {
			pids[k] = m.PID
		}
	}
	out := map[int]int{}
	okeys, err := owners.ListKeys(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for k := range okeys.Keys() {
		e, err := owners.Get(ctx, k)
		if err != nil {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimPrefix(k, "p.")); err == nil {
			out[n] = pids[string(e.Value())]
		}
	}
	return out
}
