package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/internal/testcluster"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// The fault tests run the real binary as a child process against a real
// nats-server that keeps its store in one directory across restarts.

const faultDim = 8

// pelmBinary builds cmd/pelm once per test run.
func pelmBinary(t testing.TB) string {
	t.Helper()
	return testcluster.Binary(t, "github.com/pelm-dev/pelm/cmd/pelm")
}

type faultEnv struct {
	t        *testing.T
	store    string
	host     string
	port     int
	srv      *server.Server
	url      string               // what the children connect to
	cluster  *testcluster.Cluster // instead of srv, for the cluster tests
	replicas int
	nc       *nats.Conn
	js       jetstream.JetStream

	mu      sync.Mutex
	results map[uint64][][]byte // every result the witness stream stored, by request sequence
	core    map[uint64][][]byte // every result a core subscription saw

	proc   *exec.Cmd
	exited chan error
	logs   *syncBuffer
	kids   []*child // every process spawned, for the diagnosis
}

func newFaultEnv(t *testing.T) *faultEnv {
	return newFaultEnvOn(t, "127.0.0.1")
}

// newFaultEnvOn is newFaultEnv with the server listening on host.
func newFaultEnvOn(t *testing.T, host string) *faultEnv {
	f := &faultEnv{t: t, store: t.TempDir(), host: host, port: freePort(t), results: map[uint64][][]byte{}, core: map[uint64][][]byte{}}
	f.startServer()
	f.url = "nats://" + host + ":" + strconv.Itoa(f.port)
	f.init()
	return f
}

// newClusterFaultEnv is newFaultEnv on a three-node JetStream cluster:
// the children run with --replicas 3, and the witness stream is R3.
func newClusterFaultEnv(t *testing.T) *faultEnv {
	f := &faultEnv{t: t, results: map[uint64][][]byte{}, core: map[uint64][][]byte{}, replicas: 3}
	f.cluster = testcluster.Start(t, 3)
	f.url = f.cluster.URL()
	f.init()
	return f
}

// init connects the test's client and sets up the witness of results.
func (f *faultEnv) init() {
	t := f.t
	t.Cleanup(func() {
		f.killPelm()
		if f.nc != nil {
			f.nc.Close()
		}
		f.stopServer()
	})
	nc, err := nats.Connect(f.url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	f.nc = nc
	if f.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	// A witness of every result: a stream stores each one as the server
	// receives it, even while this client is away reconnecting, and an
	// ordered consumer (which re-creates itself after a server restart)
	// reads them. Its duplicate window is the shortest NATS allows (100 ms), so replays,
	// which come seconds later, are kept too.
	ctx := context.Background()
	if _, err := f.js.CreateStream(ctx, jetstream.StreamConfig{Name: "WITNESS", Subjects: []string{"pelm.res.>"},
		Storage: jetstream.FileStorage, Duplicates: 100 * time.Millisecond, Replicas: max(1, f.replicas)}); err != nil {
		t.Fatal(err)
	}
	cons, err := f.js.OrderedConsumer(ctx, "WITNESS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		seq, err := strconv.ParseUint(m.Headers().Get(wire.HeaderSeq), 10, 64)
		if err != nil {
			t.Errorf("result without Pelm-Seq on %s", m.Subject())
			return
		}
		f.mu.Lock()
		f.results[seq] = append(f.results[seq], append([]byte(nil), m.Data()...))
		f.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	// A stream only stores what arrives once JetStream is up again after a
	// server restart; a core subscription, back within 50 ms, sees what is
	// published before that. The union is the witness.
	if _, err := nc.Subscribe("pelm.res.>", func(m *nats.Msg) {
		seq, _ := strconv.ParseUint(m.Header.Get(wire.HeaderSeq), 10, 64)
		f.mu.Lock()
		f.core[seq] = append(f.core[seq], append([]byte(nil), m.Data...))
		f.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// resultsOf returns a request's results (call with f.mu held): those the
// stream stored, or those the core subscription saw when the stream missed
// them.
func (f *faultEnv) resultsOf(seq uint64) [][]byte {
	if rs := f.results[seq]; len(rs) > 0 {
		return rs
	}
	return f.core[seq]
}

func (f *faultEnv) startServer() {
	opts := natstest.DefaultTestOptions
	opts.Host, opts.Port = f.host, f.port
	opts.JetStream = true
	opts.StoreDir = f.store
	f.srv = natstest.RunServer(&opts)
}

func (f *faultEnv) stopServer() {
	if f.srv != nil {
		f.srv.Shutdown()
		f.srv.WaitForShutdown()
		f.srv = nil
	}
}

// faultLease is the --lease of the fault tests' processes: a process
// killed -9 keeps its partitions that long.
const faultLease = 3 * time.Second

// startPelm runs `pelm serve` against the server, with extra environment.
func (f *faultEnv) startPelm(env ...string) {
	f.t.Helper()
	c := f.spawn(env...)
	f.proc, f.exited, f.logs = c.cmd, c.exited, c.logs
}

// child is one `pelm serve` process.
type child struct {
	cmd    *exec.Cmd
	exited chan error    // its exit, once: startPelm's waiters read it
	done   chan struct{} // closed when it has exited
	logs   *syncBuffer
}

// spawn starts a `pelm serve` process against the server.
func (f *faultEnv) spawn(env ...string) *child {
	f.t.Helper()
	return f.spawnWith(exec.Command, env...)
}

// spawnIn starts a `pelm serve` process in a network namespace.
func (f *faultEnv) spawnIn(ns *netns, env ...string) *child {
	f.t.Helper()
	return f.spawnWith(ns.command, env...)
}

// spawnWith starts a `pelm serve` process made by command.
func (f *faultEnv) spawnWith(command func(string, ...string) *exec.Cmd, env ...string) *child {
	f.t.Helper()
	cmd := command(pelmBinary(f.t), "serve", "--nats-url", f.url, "--replicas", strconv.Itoa(max(1, f.replicas)),
		"--dim", strconv.Itoa(faultDim), "--capacity", "100000", "--batch-max", "32", "--ack-wait", "3s",
		"--lease", faultLease.String(), "--stats-interval", "1h", "--log-level", logLevel("info"), "--http-listen", "")
	cmd.Env = append(os.Environ(), env...)
	c := &child{cmd: cmd, exited: make(chan error, 1), done: make(chan struct{}), logs: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	if dir := os.Getenv("PELM_TEST_KID_LOGS"); dir != "" {
		// Keep every child's log, for a run that passed but looked odd.
		name := strings.NewReplacer("/", "_").Replace(f.t.Name()) + "-" + strconv.Itoa(len(f.kids)) + ".log"
		file, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(func() { _ = file.Close() })
		cmd.Stdout = io.MultiWriter(c.logs, file)
		cmd.Stderr = cmd.Stdout
	}
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		close(c.done)
		c.exited <- err
	}()
	f.kids = append(f.kids, c)
	f.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

// syncBuffer is a bytes.Buffer that a child's output and the test may use
// at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitExit waits for the child to end and reports whether SIGKILL ended it.
func (f *faultEnv) waitExit(d time.Duration) (killed bool) {
	f.t.Helper()
	select {
	case err := <-f.exited:
		f.proc = nil
		if ee, ok := err.(*exec.ExitError); ok {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return ws.Signal() == syscall.SIGKILL
			}
			f.t.Fatalf("pelm exited with %v\n%s", err, f.logs)
		}
		return false
	case <-time.After(d):
		f.t.Fatalf("pelm still running after %v\n%s", d, f.logs)
		return false
	}
}

// waitExitOrResults waits until pelm dies (true) or every request has a
// result while it runs (false).
func (f *faultEnv) waitExitOrResults(load []*spec, d time.Duration) bool {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-f.exited:
			f.proc = nil
			return true
		case <-time.After(50 * time.Millisecond):
		}
		f.mu.Lock()
		missing := 0
		for _, s := range load {
			if len(f.resultsOf(s.seq)) == 0 {
				missing++
			}
		}
		f.mu.Unlock()
		if missing == 0 {
			return false
		}
	}
	f.t.Fatalf("pelm neither died nor answered everything within %v\n%s", d, f.logs)
	return false
}

func (f *faultEnv) sigterm() {
	f.t.Helper()
	if err := f.proc.Process.Signal(syscall.SIGTERM); err != nil {
		f.t.Fatal(err)
	}
	if f.waitExit(30 * time.Second) {
		f.t.Fatal("SIGTERM ended pelm by SIGKILL?")
	}
}

func (f *faultEnv) killPelm() {
	if f.proc != nil {
		_ = f.proc.Process.Kill()
		<-f.exited
		f.proc = nil
	}
}

// spec is one request of a fault test's load.
type spec struct {
	mem   string // "" means "m"
	op    string
	id    string
	vec   []float64
	phase float64
	moral float64
	conf  float64
	msgID string
	seq   uint64
}

// makeLoad draws n requests: stores and processes with fresh ids (some
// rejected by the filter or by their confidence), retrieves, forgets of
// earlier ids and, with upserts, stores of recent ids again. Upserts only
// go with a check of the order: when redeliveries may run after newer
// requests, which of two stores of one id comes last cannot be told from
// the results.
func makeLoad(seed uint64, n int, upserts bool) []*spec {
	rng := rand.New(rand.NewPCG(seed, 99))
	morals := []float64{0.95, 0.95, 0.6, 0.35}
	var out []*spec
	for i := 0; i < n; i++ {
		s := &spec{msgID: fmt.Sprintf("req-%d-%d", seed, i), phase: rng.Float64(), conf: 1}
		s.vec = make([]float64, faultDim)
		for j := range s.vec {
			s.vec[j] = rng.NormFloat64()
		}
		switch r := rng.IntN(20); {
		case r < 11:
			s.op, s.id, s.moral = "store", "s"+strconv.Itoa(i), morals[rng.IntN(len(morals))]
			if rng.IntN(5) == 0 && upserts { // a recent id again: its item is replaced
				s.id = "s" + strconv.Itoa(max(0, i-1-rng.IntN(8)))
			}
			if rng.IntN(10) == 0 {
				s.conf = 0.3
			}
		case r < 13:
			s.op, s.id, s.moral = "process", "p"+strconv.Itoa(i), morals[rng.IntN(len(morals))]
		case r < 17:
			s.op = "retrieve"
		default:
			s.op, s.id = "forget", "s"+strconv.Itoa(rng.IntN(i+1))
		}
		out = append(out, s)
	}
	return out
}

func (s *spec) memory() string {
	if s.mem == "" {
		return "m"
	}
	return s.mem
}

func (s *spec) body(t *testing.T) []byte {
	m := map[string]any{}
	switch s.op {
	case "store", "process":
		m = map[string]any{"vector": s.vec, "phase": s.phase, "id": s.id, "moral": s.moral, "confidence": s.conf}
	case "retrieve":
		m = map[string]any{"vector": s.vec, "phase": s.phase, "tolerance": 0.3}
	case "forget":
		m = map[string]any{"id": s.id}
	}
	b, err := msgpack.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publish sends the load with JetStream publishes, pacing it so that it is
// still flowing when the fault strikes; it records each request's sequence.
func (f *faultEnv) publish(load []*spec, pace time.Duration) {
	f.t.Helper()
	for i, s := range load {
		msg := nats.NewMsg("pelm.req." + s.memory() + "." + s.op)
		msg.Data = s.body(f.t)
		msg.Header.Set(wire.HeaderMsgID, s.msgID)
		ack, retried, err := f.publishRetry(msg)
		if err != nil {
			f.t.Fatalf("publish %d: %v", i, err)
		}
		if ack.Duplicate && !retried {
			// A retry's duplicate is the first try's, stored after all (its
			// ack carries that try's sequence); a first try's is not.
			f.t.Fatalf("publish %d: unexpectedly a duplicate", i)
		}
		s.seq = ack.Sequence
		if pace > 0 {
			time.Sleep(pace)
		}
	}
}

// publishRetry retries a publish while the server restarts; it reports
// whether it tried more than once.
func (f *faultEnv) publishRetry(msg *nats.Msg) (*jetstream.PubAck, bool, error) {
	var err error
	for try := 0; try < 100; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var ack *jetstream.PubAck
		ack, err = f.js.PublishMsg(ctx, msg)
		cancel()
		if err == nil {
			return ack, try > 0, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, true, err
}

// waitResults waits until every request has a result.
func (f *faultEnv) waitResults(load []*spec, d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		missing := 0
		f.mu.Lock()
		for _, s := range load {
			if len(f.resultsOf(s.seq)) == 0 {
				missing++
			}
		}
		f.mu.Unlock()
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			if f.proc != nil { // its goroutines, for the diagnosis
				_ = f.proc.Process.Signal(syscall.SIGQUIT)
				select {
				case <-f.exited:
					f.proc = nil
				case <-time.After(5 * time.Second):
				}
			}
			f.t.Fatalf("%d of %d requests have no result after %v: %s\n%s", missing, len(load), d, f.whereAre(load), f.kidLogs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// whereAre says, for the requests without a result, whether they are still
// in the requests stream (not acked) or gone (acked, so a result was lost).
func (f *faultEnv) whereAre(load []*spec) string {
	st, err := f.js.Stream(context.Background(), wire.RequestsStream)
	if err != nil {
		return err.Error()
	}
	var b bytes.Buffer
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range load {
		if len(f.resultsOf(s.seq)) > 0 {
			continue
		}
		_, err := st.GetMsg(context.Background(), s.seq)
		fmt.Fprintf(&b, "seq %d (%s %s) in the stream: %v; ", s.seq, s.op, s.id, err == nil)
		if b.Len() > 2000 {
			break
		}
	}
	return b.String()
}

// waitResultCount waits until at least n requests have a result.
func (f *faultEnv) waitResultCount(n int, d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f.mu.Lock()
		got := max(len(f.results), len(f.core))
		f.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("only %d results after %v\n%s", got, d, f.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counts is what a check saw, for the test's log and the closing note.
type counts struct {
	requests, results, replays, stores, storedItems int
}

func (c counts) String() string {
	return fmt.Sprintf("%d requests, %d results (%d replays), %d stores, %d items", c.requests, c.results, c.replays, c.stores, c.storedItems)
}

// check stops pelm, reads the durable memory back with a processor of the
// test's own, and checks the four properties of the fault tests:
// every request has a result; every effectful request's results are
// identical (it took effect once, a redelivery replayed it); no acked store
// is missing; and, when order holds, the memory and its filter equal a
// one-by-one reference.
func (f *faultEnv) check(load []*spec, ordered bool) counts {
	f.t.Helper()
	f.waitResults(load, 60*time.Second)
	if f.proc != nil {
		f.sigterm()
	}
	var c counts
	c.requests = len(load)
	f.mu.Lock()
	for _, s := range load {
		rs := f.resultsOf(s.seq)
		c.results += len(rs)
		c.replays += len(rs) - 1
		if s.op == "retrieve" {
			continue
		}
		for _, r := range rs[1:] {
			if !sameAnswer(rs[0], r) {
				a, _ := wire.BodyJSON(rs[0], "")
				b, _ := wire.BodyJSON(r, "")
				f.t.Errorf("seq %d (%s %s): two different results: the request took effect twice\n%s\n%s\n%s", s.seq, s.op, s.id, a, b, f.logs)
			}
		}
	}
	f.mu.Unlock()

	snap := f.durable()
	byMem := map[string][]*spec{}
	for _, s := range load {
		byMem[s.memory()] = append(byMem[s.memory()], s)
	}
	for mem, sub := range byMem {
		f.checkMemory(mem, sub, snap[mem], ordered, &c)
	}
	return c
}

// checkMemory checks one memory's durable state against its requests.
func (f *faultEnv) checkMemory(mem string, load []*spec, got processor.MemorySnapshot, ordered bool, c *counts) {
	f.t.Helper()
	ref := reference(load, ordered)
	c.stores += ref.stores
	c.storedItems += len(got.Items)
	if ordered {
		if len(got.Items) != len(ref.items) {
			f.t.Fatalf("memory %s holds %d items, the reference %d", mem, len(got.Items), len(ref.items))
		}
		for i, it := range got.Items {
			if it.ID != ref.items[i].id {
				f.t.Fatalf("memory %s: item %d is %s, the reference has %s", mem, i, it.ID, ref.items[i].id)
			}
		}
		if got.Filter.Threshold != ref.filter.Threshold || math.Abs(got.Filter.EMA-ref.filter.EMA) > 1e-12 {
			f.t.Errorf("memory %s: filter %+v, the reference %+v", mem, got.Filter, ref.filter)
		}
	}
	// Whatever the order, the items are those of the accepted stores the
	// results report, not forgotten, with the request's content.
	want := map[string]*spec{}
	f.mu.Lock()
	for _, s := range sortedBySeq(load) {
		var r struct {
			Accepted bool `msgpack:"accepted"`
			Found    bool `msgpack:"found"`
		}
		if err := msgpack.Unmarshal(f.resultsOf(s.seq)[0], &r); err != nil {
			f.t.Fatal(err)
		}
		switch {
		case (s.op == "store" || s.op == "process") && r.Accepted:
			want[s.id] = s
		case s.op == "forget" && r.Found:
			if _, ok := want[s.id]; !ok && ordered {
				f.t.Errorf("memory %s: forget %s found an item no accepted store made", mem, s.id)
			}
			delete(want, s.id)
		}
	}
	f.mu.Unlock()
	if len(got.Items) != len(want) {
		f.t.Errorf("memory %s holds %d items, the results say %d", mem, len(got.Items), len(want))
	}
	for _, it := range got.Items {
		s := want[it.ID]
		if s == nil {
			f.t.Errorf("memory %s: item %s is in the memory but no result says it was stored", mem, it.ID)
			continue
		}
		if it.Phase != s.phase || !sameDirection(it.Vector, s.vec) {
			f.t.Errorf("memory %s: item %s differs from its request", mem, it.ID)
		}
	}
}

// sameAnswer compares two results of one request. A request that changed
// its memory or its filter must be answered byte for byte the same (its
// redelivery replayed the stored result); one that changed nothing (a
// forget of nothing) may run again, and only its latency may differ.
func sameAnswer(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ma, mb map[string]any
	if msgpack.Unmarshal(a, &ma) != nil || msgpack.Unmarshal(b, &mb) != nil {
		return false
	}
	if _, decided := ma["accepted"]; decided || ma["found"] == true {
		return false
	}
	delete(ma, "latency")
	delete(mb, "latency")
	return fmt.Sprint(ma) == fmt.Sprint(mb)
}

// durable reads the memories back from the state stream.
func (f *faultEnv) durable() map[string]processor.MemorySnapshot {
	f.t.Helper()
	p, err := processor.New(f.nc, processor.Config{Memory: pelm.Config{Dim: faultDim, Capacity: 100000}})
	if err != nil {
		f.t.Fatal(err)
	}
	// On a cluster whose node just restarted, a read may find a replica
	// still catching up, or no replica answering direct gets yet (seen for
	// over 10 s after a SIGKILL): try again, as a partition's owner does.
	var err2 error
	for try := 0; try < 30; try++ {
		if _, err2 = p.Restore(); err2 == nil {
			return p.Snapshot()
		}
		time.Sleep(2 * time.Second)
	}
	f.t.Fatal(err2)
	return nil
}

type refState struct {
	items  []*refItem
	filter filter.State
	stores int
}

type refItem struct{ id string }

// reference runs the load one by one in stream order.
func reference(load []*spec, ordered bool) refState {
	var r refState
	flt, _ := filter.New(filter.Config{})
	for _, s := range sortedBySeq(load) {
		switch s.op {
		case "store", "process":
			r.stores++
			acc, _ := flt.Decide(s.moral)
			if !acc || s.conf < 0.5 {
				continue
			}
			for i, it := range r.items {
				if it.id == s.id {
					r.items = append(r.items[:i], r.items[i+1:]...)
					break
				}
			}
			r.items = append(r.items, &refItem{id: s.id})
		case "forget":
			for i, it := range r.items {
				if it.id == s.id {
					r.items = append(r.items[:i], r.items[i+1:]...)
					break
				}
			}
		}
	}
	r.filter = flt.State()
	return r
}

func sortedBySeq(load []*spec) []*spec {
	out := slices.Clone(load)
	slices.SortStableFunc(out, func(a, b *spec) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

func sameDirection(unit []float32, v []float64) bool {
	var n float64
	for _, x := range v {
		n += x * x
	}
	n = math.Sqrt(n)
	for i := range v {
		if math.Abs(float64(unit[i])-v[i]/n) > 1e-5 {
			return false
		}
	}
	return true
}

// logLevel is the children's --log-level: PELM_TEST_LOG_LEVEL, or def.
func logLevel(def string) string {
	if l := os.Getenv("PELM_TEST_LOG_LEVEL"); l != "" {
		return l
	}
	return def
}

// kidLogs is what every process spawned wrote, but its routine lines.
func (f *faultEnv) kidLogs() string {
	var b strings.Builder
	for i, c := range f.kids {
		fmt.Fprintf(&b, "--- process %d (pid %d):\n", i, c.cmd.Process.Pid)
		for _, line := range strings.Split(c.logs.String(), "\n") {
			if !strings.Contains(line, `"message":"batch"`) {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}
