package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
)

// The scale-out tests run several `pelm serve` processes on one server and
// 16 memories, fault them (kill -9, SIGTERM, SIGSTOP past the lease, a
// process joining), and check with the fault suite's checker: every
// request answered, no double effect, every memory equal to a one-by-one
// reference in stream order (PROTOCOL.md, Order, holds across handovers).

func scaleSeeds() []uint64 {
	if testing.Short() {
		return []uint64{1}
	}
	return []uint64{1, 2, 3}
}

const scaleMemories = 16

// makeScaleLoad draws n requests over the memories m0..m15, with upserts
// where the check will hold the order.
func makeScaleLoad(seed uint64, n int, upserts bool) []*spec {
	load := makeLoad(seed, n, upserts)
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, s := range load {
		s.mem = "m" + strconv.Itoa(rng.IntN(scaleMemories))
	}
	return load
}

func scaleLoadSize() int {
	if testing.Short() {
		return 400
	}
	return 1200
}

// stopAll ends the processes (SIGTERM) so that check reads what they left.
func (f *faultEnv) stopAll(cs ...*child) {
	f.t.Helper()
	for _, c := range cs {
		_ = c.cmd.Process.Signal(syscall.SIGCONT) // a stopped one must run to stop
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range cs {
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			f.t.Errorf("a pelm did not stop within 30s of SIGTERM\n%s", c.logs)
		}
	}
}

// owners reads PELM_OWNERS: how many partitions each member serves.
func (f *faultEnv) owners() map[string]int {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := f.js.KeyValue(ctx, processor.OwnersBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil // no process has made it yet
	}
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]int{}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err == nil {
			out[string(e.Value())]++
		}
	}
	return out
}

// waitShared waits until n processes each serve a share of the partitions.
func (f *faultEnv) waitShared(n int, d time.Duration, _ ...*child) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		own := f.owners()
		total, least := 0, 1<<30
		for _, c := range own {
			total += c
			least = min(least, c)
		}
		if len(own) == n && total == processor.DefaultPartitions+1 && least >= (processor.DefaultPartitions+1)/n-1 &&
			processor.Serving(context.Background(), f.js) {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d processes did not share the partitions within %v: %v\n%s", n, d, own, f.kidLogs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestScaleShare runs two, then three processes: each serves a share, and
// the memories answer as one process would.
func TestScaleShare(t *testing.T) {
	for _, seed := range scaleSeeds() {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			f := newFaultEnv(t)
			load := makeScaleLoad(seed, scaleLoadSize(), true)
			a, b := f.spawn(), f.spawn()
			f.waitShared(2, 30*time.Second, a, b)
			f.publish(load[:len(load)/2], 0)
			f.waitResults(load[:len(load)/2], 60*time.Second)
			c := f.spawn()
			f.waitShared(3, 30*time.Second, a, b, c)
			f.publish(load[len(load)/2:], 0)
			f.waitResults(load, 60*time.Second)
			f.stopAll(a, b, c)
			t.Logf("%v", f.check(load, true))
		})
	}
}

// TestScaleKill kills one of three processes (SIGKILL or SIGTERM) while a
// burst runs: the others take its partitions over and nothing is lost,
// done twice or run out of order.
func TestScaleKill(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		for _, seed := range scaleSeeds() {
			t.Run(fmt.Sprint(sig, "/seed", seed), func(t *testing.T) {
				f := newFaultEnv(t)
				load := makeScaleLoad(seed, scaleLoadSize(), true)
				cs := []*child{f.spawn(), f.spawn(), f.spawn()}
				f.waitShared(3, 30*time.Second, cs...)
				done := make(chan struct{})
				go func() {
					defer close(done)
					f.publish(load, time.Millisecond)
				}()
				f.waitResultCount(len(load)/3, 60*time.Second)
				victim := cs[int(seed)%3]
				_ = victim.cmd.Process.Signal(sig)
				<-victim.done
				<-done
				f.waitResults(load, 60*time.Second)
				f.stopAll(cs...)
				t.Logf("%v", f.check(load, true))
			})
		}
	}
}

// TestScaleJoin starts a second and a third process while a burst runs:
// they take their shares over, and order holds across each handover.
func TestScaleJoin(t *testing.T) {
	for _, seed := range scaleSeeds() {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			f := newFaultEnv(t)
			load := makeScaleLoad(seed, scaleLoadSize(), true)
			cs := []*child{f.spawn()}
			f.waitShared(1, 30*time.Second, cs...)
			done := make(chan struct{})
			go func() {
				defer close(done)
				f.publish(load, time.Millisecond)
			}()
			f.waitResultCount(len(load)/4, 60*time.Second)
			cs = append(cs, f.spawn())
			f.waitResultCount(len(load)/2, 60*time.Second)
			cs = append(cs, f.spawn())
			<-done
			f.waitResults(load, 60*time.Second)
			f.waitShared(3, 30*time.Second, cs...)
			f.stopAll(cs...)
			t.Logf("%v", f.check(load, true))
		})
	}
}

// TestScaleFencing pauses an owner (SIGSTOP) right after it made a batch
// durable and before it published the batch's results, keeps it paused
// past the lease while another process takes its partitions over, then
// resumes it. The resumed process must publish nothing and write nothing:
// no result arrives after it resumes, and the memories equal the
// reference. The load goes to memories of one partition, so that the
// paused process has no other batch between its publishes and its flush
// (results it had handed to its connection before a pause would still
// reach the server after it: README, Scale-out).
func TestScaleFencing(t *testing.T) {
	mems := sharedPartition(4)
	for _, seed := range scaleSeeds() {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			f := newFaultEnv(t)
			load := makeScaleLoad(seed, scaleLoadSize(), true)
			for i, s := range load {
				s.mem = mems[i%len(mems)]
			}
			paused := f.spawn("PELM_TEST_STOP=" + processor.HookAfterPersist + ":" + strconv.Itoa(3+int(seed)))
			f.waitShared(1, 30*time.Second, paused)
			done := make(chan struct{})
			go func() {
				defer close(done)
				f.publish(load, time.Millisecond)
			}()
			waitFor(t, 60*time.Second, "the owner to stop itself", func() bool { return stopped(paused.cmd.Process.Pid) })
			stoppedAt := time.Now()
			other := f.spawn()
			<-done
			f.waitResults(load, 60*time.Second)
			// It renewed its membership at most a quarter lease before it
			// stopped; the other waits out the whole lease from then.
			if held := time.Since(stoppedAt); held < faultLease*3/4 {
				t.Fatalf("the paused process's partitions were served %v after it stopped, within its lease", held)
			}
			before := f.settledResults(time.Second)
			snapshot := f.resultCounts()
			if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			// Give it time to do whatever it would do: publish the batch it
			// held, ack it, materialise, renew its membership, take a share
			// again.
			time.Sleep(2 * time.Second)
			if after := f.settledResults(time.Second); after != before {
				var late []string
				for seq, n := range f.resultCounts() {
					if n != snapshot[seq] {
						late = append(late, fmt.Sprintf("seq %d: %d then %d", seq, snapshot[seq], n))
					}
				}
				t.Errorf("%d results came after the paused process resumed (%v): it published after it lost its partitions\n%s\nthe other process:\n%s",
					after-before, late, paused.logs, other.logs)
			}
			f.stopAll(other, paused)
			if !strings.Contains(paused.logs.String(), "taken over") {
				t.Errorf("the resumed process did not notice it lost its partitions:\n%s", paused.logs)
			}
			t.Logf("%v", f.check(load, true))
		})
	}
}

// TestScaleClusterNodeLoss runs two processes on a three-node JetStream
// cluster with R3 streams, and takes down the node that leads the
// requests stream under load, then starts it again: killed (SIGKILL) with
// odd seeds, stopped (SIGTERM) with even ones. No acknowledged request is
// lost or done twice. Requests in flight when a NATS server fails run when
// they are redelivered (PROTOCOL.md, Order), so the order is not checked.
func TestScaleClusterNodeLoss(t *testing.T) {
	for _, seed := range scaleSeeds() {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			f := newClusterFaultEnv(t)
			load := makeScaleLoad(seed, scaleLoadSize(), false)
			cs := []*child{f.spawn(), f.spawn()}
			f.waitShared(2, 60*time.Second, cs...)
			done := make(chan struct{})
			go func() {
				defer close(done)
				f.publish(load, time.Millisecond)
			}()
			f.waitResultCount(len(load)/3, 60*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, err := f.js.Stream(ctx, wire.RequestsStream)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			leader := f.cluster.Index(st.CachedInfo().Cluster.Leader)
			if leader < 0 {
				t.Fatalf("no leader of %s: %+v", wire.RequestsStream, st.CachedInfo().Cluster)
			}
			how := "stopped"
			if seed%2 == 1 {
				how = "killed"
				f.cluster.Kill(leader)
			} else {
				f.cluster.Stop(leader)
			}
			time.Sleep(2 * time.Second)
			f.cluster.Restart(leader)
			<-done
			f.waitResults(load, 120*time.Second)
			f.stopAll(cs...)
			t.Logf("%s %s, the leader of %s: %v", how, st.CachedInfo().Cluster.Leader, wire.RequestsStream, f.check(load, false))
		})
	}
}

// sharedPartition returns n memory names that fall into one partition.
func sharedPartition(n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		name := "f" + strconv.Itoa(i)
		if durable.Partition(name, processor.DefaultPartitions) == 5 {
			out = append(out, name)
		}
	}
	return out
}

// stopped reports whether a process is stopped by a signal.
func stopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces, so read after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'T'
}

// settledResults waits until no result has come for quiet, and returns how
// many came in all (the witness stream's and the core subscription's).
func (f *faultEnv) settledResults(quiet time.Duration) int {
	count := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := 0
		for _, rs := range f.results {
			n += len(rs)
		}
		for _, rs := range f.core {
			n += len(rs)
		}
		return n
	}
	last := count()
	for {
		time.Sleep(quiet)
		n := count()
		if n == last {
			return n
		}
		last = n
	}
}

// resultCounts is how many results each request has.
func (f *faultEnv) resultCounts() map[uint64]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uint64]int{}
	for seq, rs := range f.results {
		out[seq] += len(rs)
	}
	for seq, rs := range f.core {
		out[seq] += len(rs)
	}
	return out
}

// TestScalePartition cuts one of two processes off the NATS server while
// a burst runs (the link of its network namespace goes down: packets
// vanish, nothing is refused), keeps it cut until the other process serves
// every partition, then mends the link. The cut-off process must notice
// it lost its partitions, and its writes that arrive late must be refused:
// nothing is lost, done twice or run out of order, and once back it takes
// a share again.
func TestScalePartition(t *testing.T) {
	for _, seed := range scaleSeeds() {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ns := newNetns(t)
			f := newFaultEnvOn(t, ns.hostIP)
			load := makeScaleLoad(seed, scaleLoadSize(), true)
			cut, other := f.spawnIn(ns), f.spawn()
			f.waitShared(2, 30*time.Second, cut, other)
			done := make(chan struct{})
			go func() {
				defer close(done)
				f.publish(load, time.Millisecond)
			}()
			f.waitResultCount(len(load)/3, 60*time.Second)
			ns.cut()
			cutAt := time.Now()
			f.waitShared(1, 60*time.Second, other)
			tookOver := time.Since(cutAt)
			ns.mend()
			<-done
			f.waitResults(load, 60*time.Second)
			f.waitShared(2, 60*time.Second, cut, other)
			f.stopAll(cut, other)
			if !strings.Contains(cut.logs.String(), "taken over") {
				t.Errorf("the cut-off process did not notice it lost its partitions:\n%s", cut.logs)
			}
			t.Logf("the other process served every partition %v after the cut; %v", tookOver.Round(time.Millisecond), f.check(load, true))
		})
	}
}
