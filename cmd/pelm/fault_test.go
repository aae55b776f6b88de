package main

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// faultSeeds are the loads each scenario runs: one in -short mode, more in
// the full mode.
func faultSeeds() []uint64 {
	if testing.Short() {
		return []uint64{1}
	}
	return []uint64{1, 2, 3, 4, 5}
}

func faultLoadSize() int {
	if testing.Short() {
		return 300
	}
	return 1500
}

// TestFaultCrashAtEachPoint kills pelm with SIGKILL at each point of its
// batch loop, restarts it, and checks that nothing was lost or done twice.
func TestFaultCrashAtEachPoint(t *testing.T) {
	for _, point := range []string{processor.HookAfterPull, processor.HookAfterPersist, processor.HookAfterPublish, processor.HookBeforeAck, processor.HookAfterAck} {
		for _, seed := range faultSeeds() {
			t.Run(point, func(t *testing.T) {
				f := newFaultEnv(t)
				load := makeLoad(seed, faultLoadSize(), true)
				f.startPelm("PELM_TEST_CRASH=" + point + ":" + string(rune('1'+seed%3)))
				f.publish(load[:len(load)/2], 0)
				if !f.waitExit(60 * time.Second) {
					t.Fatalf("pelm did not crash itself at %s\n%s", point, f.logs)
				}
				f.startPelm()
				f.publish(load[len(load)/2:], 0)
				c := f.check(load, true)
				t.Logf("seed %d: %v", seed, c)
			})
		}
	}
}

// TestFaultNATSRestart restarts the NATS server under a running pelm.
// Requests that were in flight come back when JetStream redelivers them,
// behind newer ones (PROTOCOL.md: redelivered requests run when they are
// redelivered), so this checks results, single effects and the stored
// items, not the order.
func TestFaultNATSRestart(t *testing.T) {
	for _, seed := range faultSeeds() {
		f := newFaultEnv(t)
		load := makeLoad(seed, faultLoadSize(), false)
		f.startPelm()
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.publish(load, 2*time.Millisecond)
		}()
		f.waitResultCount(len(load)/3, 60*time.Second)
		f.stopServer()
		time.Sleep(500 * time.Millisecond)
		f.startServer()
		<-done
		c := f.check(load, false)
		t.Logf("seed %d: %v", seed, c)
	}
}

// TestFaultSIGTERM stops pelm with SIGTERM in the middle of a load and
// restarts it.
func TestFaultSIGTERM(t *testing.T) {
	for _, seed := range faultSeeds() {
		f := newFaultEnv(t)
		load := makeLoad(seed, faultLoadSize(), true)
		f.startPelm()
		f.publish(load, 0)
		f.waitResultCount(len(load)/4, 60*time.Second)
		f.sigterm()
		f.startPelm()
		c := f.check(load, true)
		t.Logf("seed %d: %v", seed, c)
	}
}

// TestFaultDuplicates publishes requests twice with the same Nats-Msg-Id:
// inside the duplicate window the stream drops the second; after it, the
// second is a new request (a store of the same id again).
func TestFaultDuplicates(t *testing.T) {
	for _, seed := range faultSeeds() {
		f := newFaultEnv(t)
		// The processor uses the requests stream as it finds it: make its
		// duplicate window short enough to step out of in a test.
		_, err := f.js.CreateStream(context.Background(), jetstream.StreamConfig{
			Name: wire.RequestsStream, Subjects: []string{"pelm.req.>"}, Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Duplicates: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		load := makeLoad(seed, faultLoadSize()/3, true)
		f.startPelm()
		f.publish(load, 0)
		for _, s := range load {
			msg := nats.NewMsg("pelm.req.m." + s.op)
			msg.Data = s.body(t)
			msg.Header.Set(wire.HeaderMsgID, s.msgID)
			ack, _, err := f.publishRetry(msg)
			if err != nil {
				t.Fatal(err)
			}
			if !ack.Duplicate || ack.Sequence != s.seq {
				t.Fatalf("a second publish of %s inside the window was stored as %d", s.msgID, ack.Sequence)
			}
		}
		time.Sleep(1500 * time.Millisecond) // out of the window
		var again []*spec
		for _, s := range load[:len(load)/2] {
			cp := *s
			again = append(again, &cp)
		}
		f.publish(again, 0)
		all := append(load, again...)
		c := f.check(all, true)
		t.Logf("seed %d: all %d dropped inside the window, %d republished after it; %v", seed, len(load), len(again), c)
	}
}

// TestFaultSlowBatch makes every batch take longer than AckWait, so that
// JetStream redelivers requests while earlier copies wait in the prefetch
// buffer or run. It checks the outcome only: every copy after the first
// replays the first's result and the memory equals the reference. (Whether
// InProgress kept a running batch from being redelivered is not told apart
// here: a redelivered copy would replay just the same.)
func TestFaultSlowBatch(t *testing.T) {
	seed := faultSeeds()[0]
	f := newFaultEnv(t)
	load := makeLoad(seed, 64, true)
	f.startPelm("PELM_TEST_DELAY=" + processor.HookAfterPull + ":4s")
	f.publish(load, 0)
	c := f.check(load, true)
	t.Logf("seed %d: %v", seed, c)
}

// TestFaultPoisonRequest sends a request that kills pelm whenever it runs.
// Restarted each time, pelm finds it, runs it alone up to --max-deliver
// times, then sets it aside in the DLQ with an internal error; everything
// else is answered and stored as if it had never been sent.
func TestFaultPoisonRequest(t *testing.T) {
	f := newFaultEnv(t)
	load := makeLoad(faultSeeds()[0], 100, true)
	var poison *spec
	for _, s := range load[40:] {
		if s.op == "store" {
			poison, s.id = s, "poison"
			break
		}
	}
	env := []string{"PELM_TEST_POISON=poison", "PELM_MAX_DELIVER=3"}
	f.startPelm(env...)
	f.publish(load, 0)
	crashes := 0
	for ; crashes < 12; crashes++ {
		if !f.waitExitOrResults(load, 30*time.Second) {
			break // it stopped crashing and answered everything
		}
		f.startPelm(env...)
	}
	if crashes < 4 {
		t.Fatalf("pelm died %d times; a poison request should kill it until it is set aside", crashes)
	}
	f.mu.Lock()
	var r struct {
		OK    bool `msgpack:"ok"`
		Error struct {
			Code string `msgpack:"code"`
		} `msgpack:"error"`
	}
	err := msgpack.Unmarshal(f.resultsOf(poison.seq)[0], &r)
	f.mu.Unlock()
	if err != nil || r.OK || r.Error.Code != "internal" {
		t.Fatalf("the poison request's result: %+v, %v", r, err)
	}
	dlq, err := f.js.Stream(context.Background(), wire.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := dlq.Info(context.Background())
	if info.State.Msgs != 1 {
		t.Errorf("the DLQ holds %d messages, want the poison request", info.State.Msgs)
	}
	// The reference never runs the poison request: it was set aside.
	poison.op = "retrieve"
	c := f.check(load, true)
	t.Logf("%d crashes; %v", crashes, c)
}
