package processor_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
	"github.com/rs/zerolog"
	"github.com/vmihailenco/msgpack/v5"
)

// env is a real nats-server with JetStream and a processor running on it.
type env struct {
	t    testing.TB
	srv  *server.Server
	nc   *nats.Conn // the client's connection
	js   jetstream.JetStream
	proc *processor.Processor
	stop func() // cancel Run and wait for it to return
}

func startServer(t testing.TB) *server.Server {
	t.Helper()
	opts := natstest.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	s := natstest.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	return s
}

// startEnv runs a processor with cfg against a new server.
func startEnv(t *testing.T, cfg processor.Config) *env {
	t.Helper()
	return startEnvOn(t, startServer(t), cfg)
}

// startEnvOn runs a processor with cfg against srv. The processor stops at
// the end of the test, or earlier with env.stop.
func startEnvOn(t testing.TB, srv *server.Server, cfg processor.Config) *env {
	t.Helper()
	pc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Memory.Dim == 0 {
		cfg.Memory.Dim = 4
	}
	if cfg.StatsInterval == 0 {
		cfg.StatsInterval = time.Hour
	}
	if os.Getenv("PELM_TEST_LOG") != "" {
		cfg.Logger = zerolog.New(zerolog.NewTestWriter(t))
	}
	p, err := processor.New(pc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	stop := sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		pc.Close()
	})
	t.Cleanup(stop)
	e := clientEnv(t, srv, p)
	e.stop = stop
	return e
}

// clientEnv connects a client to srv beside processor p and waits until
// every partition has its consumer.
func clientEnv(t testing.TB, srv *server.Server, p *processor.Processor) *env {
	t.Helper()
	nc, js := connectJS(t, srv)
	e := &env{t: t, srv: srv, nc: nc, js: js, proc: p}
	e.waitConsumer()
	return e
}

// startCrashable runs a processor on a connection of its own and returns
// the env of a client beside it and crash, which kills the processor the
// way a crash would (its connection closed: no shutdown, no further acks)
// and waits until Run has returned. With crashAt, the connection is closed
// when the batch loop first reaches that hook point; crash then only waits.
// before is run on the processor before Run.
func startCrashable(t *testing.T, srv *server.Server, cfg processor.Config, crashAt string, before ...func(*processor.Processor)) (e *env, crash func()) {
	t.Helper()
	pc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	if crashAt != "" {
		var once sync.Once
		cfg.Hook = func(point string) {
			if point == crashAt {
				once.Do(pc.Close)
			}
		}
	}
	p, err := processor.New(pc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range before {
		f(p)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(context.Background()) }()
	return clientEnv(t, srv, p), func() {
		t.Helper()
		pc.Close()
		select {
		case <-runErr:
		case <-time.After(10 * time.Second):
			t.Fatal("the processor did not stop when its connection closed")
		}
	}
}

// durableSnapshot reads the memories back from the state stream.
func durableSnapshot(t *testing.T, nc *nats.Conn, cfg processor.Config) map[string]processor.MemorySnapshot {
	t.Helper()
	p, err := processor.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	return p.Snapshot()
}

// waitConsumer polls until the processor has created its consumer.
func (e *env) waitConsumer() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if processor.Serving(context.Background(), e.js) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("processor did not create its consumer")
}

// sub subscribes to subject and returns a function that waits for the next message.
func (e *env) sub(subject string) func() *nats.Msg {
	e.t.Helper()
	ch := make(chan *nats.Msg, 4096)
	s, err := e.nc.ChanSubscribe(subject, ch)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = s.Unsubscribe() })
	if err := e.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return func() *nats.Msg {
		e.t.Helper()
		select {
		case m := <-ch:
			return m
		case <-time.After(10 * time.Second):
			e.t.Fatalf("no message on %s within 10s", subject)
			return nil
		}
	}
}

type req struct {
	subject string
	body    []byte
	headers map[string]string
}

// publish sends a request with a JetStream publish and returns its stream sequence.
func (e *env) publish(r req) uint64 {
	e.t.Helper()
	m := nats.NewMsg(r.subject)
	m.Data = r.body
	for k, v := range r.headers {
		m.Header.Set(k, v)
	}
	ack, err := e.js.PublishMsg(context.Background(), m)
	if err != nil {
		e.t.Fatalf("publish %s: %v", r.subject, err)
	}
	return ack.Sequence
}

func mp(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func js(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var jsonHdr = map[string]string{"Content-Type": "application/json"}

// result decodes a result message (either encoding) into a generic map with
// JSON-like types (numbers as float64).
func result(t *testing.T, m *nats.Msg) map[string]any {
	t.Helper()
	b, err := wire.BodyJSON(m.Data, m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("result on %s: %v", m.Subject, err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("result on %s is not a map: %v", m.Subject, err)
	}
	return out
}

// refItem and refRetrieve are the test's own reference of a retrieve.
type refItem struct {
	id    string
	vec   []float64
	phase float64
	conf  float64
	order int
}

type refMatch struct {
	id    string
	score float64
}

func refRetrieve(items []refItem, q []float64, phase, tol float64, k int, minConf float64) []refMatch {
	var out []refMatch
	type cand struct {
		refMatch
		order int
	}
	var cs []cand
	for _, it := range items {
		if math.Abs(it.phase-phase) > tol || it.conf < minConf {
			continue
		}
		cs = append(cs, cand{refMatch{it.id, cosine(it.vec, q)}, it.order})
	}
	for i := 1; i < len(cs); i++ { // insertion sort: score desc, newer first
		for j := i; j > 0 && (cs[j].score > cs[j-1].score || cs[j].score == cs[j-1].score && cs[j].order > cs[j-1].order); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
	for i := 0; i < len(cs) && i < k; i++ {
		out = append(out, cs[i].refMatch)
	}
	return out
}

func cosine(a, b []float64) float64 {
	var d, na, nb float64
	for i := range a {
		d += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	return d / math.Sqrt(na*nb)
}

// checkMatches compares a result's matches with the reference.
func checkMatches(t *testing.T, res map[string]any, want []refMatch) {
	t.Helper()
	got, _ := res["matches"].([]any)
	if len(got) != len(want) {
		t.Fatalf("matches: got %d %v, want %d %v", len(got), got, len(want), want)
	}
	for i, g := range got {
		m := g.(map[string]any)
		if m["id"] != want[i].id {
			t.Errorf("match %d: id %v, want %s", i, m["id"], want[i].id)
		}
		if s := m["score"].(float64); math.Abs(s-want[i].score) > 1e-5 {
			t.Errorf("match %d: score %v, want %v", i, s, want[i].score)
		}
	}
}

func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		return f
	}
	return math.NaN()
}

// eventually polls cond until it holds or ten seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// refFilter is the test's own filter, written as the ancestor computes
// it (PROTOCOL.md, Filter): float64, each operation rounded, in this order.
type refFilter struct{ t, ema float64 }

func newRefFilter() *refFilter { return &refFilter{t: 0.5, ema: 0.5} }

// decide returns the decision for moral and the threshold it was compared with.
func (f *refFilter) decide(moral float64) (bool, float64) {
	thr := f.t
	acc := moral >= 0.9 || (moral >= 0.3 && moral >= f.t)
	s := 0.0
	if acc {
		s = 1
	}
	f.ema = float64(0.1*s) + float64((1.0-0.1)*f.ema)
	switch e := f.ema - 0.5; {
	case e > 0.05:
		f.t = min(f.t+0.05, 0.9)
	case e < -0.05:
		f.t = max(f.t-0.05, 0.3)
	}
	return acc, thr
}
