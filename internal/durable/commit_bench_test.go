package durable

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkStateCommit measures what bounds the batch loop's durability:
// making n state messages of 1.6 KiB durable as one JetStream atomic batch
// (what the batch loop waited for before the journal; materialising does it
// now, behind the requests), as n pipelined ordinary publishes, and as one
// message of the same total size, with the server syncing before it acks
// (sync=always, the default of `pelm serve`) or every two minutes.
// ms/commit is the wall time until the server has acknowledged it all.
func BenchmarkStateCommit(b *testing.B) {
	for _, always := range []bool{true, false} {
		sync := "2m"
		if always {
			sync = "always"
		}
		b.Run("sync="+sync, func(b *testing.B) {
			opts := natstest.DefaultTestOptions
			opts.Port, opts.JetStream, opts.StoreDir = -1, true, b.TempDir()
			opts.SyncAlways, opts.SyncInterval = always, 2*time.Minute
			srv := natstest.RunServer(&opts)
			defer srv.Shutdown()
			for _, n := range []int{1, 16, 256} {
				b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) { benchCommits(b, srv, n) })
			}
		})
	}
}

func benchCommits(b *testing.B, srv *server.Server, n int) {
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1<<12))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	_ = js.DeleteStream(ctx, StateStream)
	if _, err := js.CreateStream(ctx, stateStreamConfig("bench")); err != nil {
		b.Fatal(err)
	}
	subj := stateSubjects{base: "bench.state."}
	data := make([]byte, 1640)
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/commit")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "us/msg")
	}
	b.Run("atomic", func(b *testing.B) {
		c := committer{nc: nc, subj: subj}
		for i := 0; b.Loop(); i++ {
			c.begin()
			for j := range n {
				if err := c.add(subj.item("m", strconv.Itoa(j)), data); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.commit(ctx, uint64(i), journalMark{}); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("publishes", func(b *testing.B) {
		for b.Loop() {
			for j := range n {
				if _, err := js.PublishAsync(subj.item("m", strconv.Itoa(j)), data); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				b.Fatal("publishes not acknowledged")
			}
		}
		report(b)
	})
	b.Run("one-message", func(b *testing.B) {
		big := make([]byte, n*len(data))
		for b.Loop() {
			if _, err := js.Publish(ctx, subj.base+"wal", big); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

// commit closes the atomic batch and waits until the stream has stored it,
// as the batch loop did before the journal.
func (c *committer) commit(ctx context.Context, lastSeq uint64, mark journalMark) error {
	resp, err := c.nc.RequestMsgWithContext(ctx, c.commitMsg(lastSeq, mark))
	if err != nil {
		return fmt.Errorf("processor: commit state: %w", err)
	}
	return parseCommitReply(resp.Data, c.n)
}
