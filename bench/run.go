package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// runner is one Run: its connection, workload and the step in progress.
type runner struct {
	cfg   Config
	nc    *nats.Conn
	js    jetstream.JetStream
	w     *workload
	token string // distinguishes this run's request ids
	inbox string
	steps uint64
	cur   atomic.Pointer[step]
	stray atomic.Int64
	prog  *progress
	rep   *Report
}

// Run drives pelm (through load, a connection to its NATS) and, when echo
// is not nil, the echo floor (run on the connection echo, which should be
// a connection of its own, as pelm's processor has one) and returns the
// report. It returns an error when the config is invalid, when setup fails,
// or when pelm answers nothing in the preload or the warm-up
// (ErrNoResults); a load that pelm cannot sustain is a finding, not an
// error.
func Run(ctx context.Context, load, echo *nats.Conn, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r, err := newRunner(load, cfg)
	if err != nil {
		return nil, err
	}
	r.rep.Config.Echo = echo != nil
	if cfg.KeepResults {
		remove, err := r.keepResults(ctx)
		if err != nil {
			return nil, err
		}
		defer remove()
	}
	sub, err := load.Subscribe(r.inbox, r.onResult)
	if err != nil {
		return nil, fmt.Errorf("%w: subscribe %s: %w", ErrSetup, r.inbox, err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	defer func() { _ = sub.Unsubscribe() }()
	if stats, err := load.Subscribe(cfg.Prefix+".stats", r.onStats); err == nil {
		defer func() { _ = stats.Unsubscribe() }()
	}
	r.prog.start()
	defer r.prog.stop()

	// pelm: preload, then a warm-up whose results size the echo's replies.
	if cfg.Preload > 0 {
		st, err := r.closedLoop(ctx, sysPelm, cfg.Preload)
		if err != nil {
			return nil, err
		}
		r.rep.Steps = append(r.rep.Steps, st.report(cfg.MaxP99))
	}
	sizes := defaultReplySizes
	if cfg.Warmup > 0 {
		st := r.openLoop(ctx, sysPelm, KindWarmup, DefaultWarmupRate, cfg.Warmup)
		rs := st.report(cfg.MaxP99)
		r.rep.Steps = append(r.rep.Steps, rs)
		if rs.Results == 0 {
			return nil, fmt.Errorf("%w: pelm answered none of %d warm-up requests on %s.req.%s.*; is it running, and does --reply-allow admit %s?",
				ErrNoResults, rs.Sent, cfg.Prefix, cfg.memoryNames()[0], cfg.Inbox)
		}
		for o, n := range st.meanSizes() {
			if n > 0 {
				sizes[o] = n
			}
		}
	}
	for o := range numOps {
		if cfg.Mix.weights()[o] > 0 {
			r.rep.ResultBytes[opNames[o]] = sizes[o]
			r.rep.RequestBytes[opNames[o]] = len(r.w.bodies[o][0])
		}
	}

	// The echo floor runs beside the load until the end.
	var echoWG sync.WaitGroup
	if echo != nil {
		e, err := newEcho(echo, cfg, sizes)
		if err != nil {
			return nil, err
		}
		cons, err := e.setup(ctx)
		if err != nil {
			return nil, err
		}
		defer e.teardown()
		echoCtx, stopEcho := context.WithCancel(context.Background())
		echoWG.Go(func() { _ = e.run(echoCtx, cons) })
		defer echoWG.Wait()
		defer stopEcho()
		if cfg.Warmup > 0 {
			st := r.openLoop(ctx, sysEcho, KindWarmup, DefaultWarmupRate, cfg.Warmup)
			r.rep.Steps = append(r.rep.Steps, st.report(cfg.MaxP99))
		}
	}
	systems := []system{sysPelm}
	if echo != nil {
		systems = []system{sysEcho, sysPelm}
	}

	for _, rate := range cfg.Rates {
		for _, sys := range systems {
			if ctx.Err() != nil {
				break
			}
			st := r.openLoop(ctx, sys, KindRate, rate, cfg.Duration)
			r.rep.Steps = append(r.rep.Steps, st.report(cfg.MaxP99))
		}
	}
	if cfg.FindMax && ctx.Err() == nil {
		m := &MaxRates{}
		for _, sys := range systems {
			best := r.findMax(ctx, sys)
			if sys == sysEcho {
				m.EchoPerS = best
			} else {
				m.PelmPerS = best
			}
		}
		if m.EchoPerS > 0 {
			m.Ratio = m.PelmPerS / m.EchoPerS
		}
		r.rep.Max = m
		if half := math.Round(m.PelmPerS / 2); half > 0 {
			for _, sys := range systems {
				if ctx.Err() != nil {
					break
				}
				st := r.openLoop(ctx, sys, KindHalfMax, half, cfg.Duration)
				r.rep.Steps = append(r.rep.Steps, st.report(cfg.MaxP99))
			}
		}
	}
	r.rep.Stray = r.stray.Load()
	r.rep.Elapsed = time.Since(r.rep.Started).Seconds()
	r.rep.compare()
	r.rep.judge(cfg)
	if err := ctx.Err(); err != nil {
		r.rep.Notes = append(r.rep.Notes, "interrupted: "+err.Error())
	}
	return r.rep, nil
}

// ResultsStream is the stream Config.KeepResults binds to the run's reply
// subject.
const ResultsStream = "PELMBENCH_RESULTS"

// keepResults creates ResultsStream on the run's reply subject and returns
// what deletes it. pelm learns of it from JetStream's stream advisory.
func (r *runner) keepResults(ctx context.Context) (remove func(), err error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := r.js.CreateStream(cctx, jetstream.StreamConfig{Name: ResultsStream, Subjects: []string{r.inbox},
		Storage: jetstream.FileStorage, MaxAge: 10 * time.Minute}); err != nil {
		return nil, fmt.Errorf("%w: results stream: %w", ErrSetup, err)
	}
	r.rep.Config.KeepResults = true
	return func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.js.DeleteStream(dctx, ResultsStream)
	}, nil
}

func newRunner(nc *nats.Conn, cfg Config) (*runner, error) {
	var tok [4]byte
	_, _ = rand.Read(tok[:])
	r := &runner{cfg: cfg, nc: nc, token: hex.EncodeToString(tok[:])}
	r.inbox = cfg.Inbox + "." + r.token
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(8192),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) {
			if st := r.cur.Load(); st != nil {
				st.pubErrs.Add(1)
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("%w: jetstream: %w", ErrSetup, err)
	}
	r.js = js
	r.w = newWorkload(cfg)
	r.prog = newProgress(cfg.Progress, r)
	r.rep = &Report{
		Started: time.Now(),
		Machine: Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()},
		Config: ConfigReport{
			Prefix: cfg.Prefix, Memory: cfg.Memory, Memories: cfg.Memories, Dim: cfg.Dim, Preload: cfg.Preload,
			Rates: cfg.Rates, FindMax: cfg.FindMax, DurationS: cfg.Duration.Seconds(),
			MaxRate: cfg.MaxRate, TimeoutS: cfg.Timeout.Seconds(), MaxP99US: cfg.MaxP99.Microseconds(),
			Mix: cfg.Mix.String(), Phases: cfg.Phases.String(), Seed: cfg.Seed,
			BatchMax: cfg.Batch.MaxSize, BatchWaitS: cfg.Batch.MaxWait.Seconds(), TTLS: cfg.TTL.Seconds(),
		},
		Settings:     cfg.Settings,
		ResultBytes:  map[string]int{},
		RequestBytes: map[string]int{},
	}
	if r.rep.Config.Rates == nil {
		r.rep.Config.Rates = []float64{}
	}
	return r, nil
}

// defaultReplySizes are the echo's reply sizes when there was no warm-up:
// about a store result, and a retrieve or process result with five matches.
var defaultReplySizes = [numOps]int{opStore: 200, opRetrieve: 450, opProcess: 550, opForget: 120}

// onResult matches a result to its request by the id it carries.
func (r *runner) onResult(m *nats.Msg) {
	now := time.Now()
	st := r.cur.Load()
	stepID, i, ok := r.parseID(m.Header.Get(wire.HeaderRequestID))
	if !ok || st == nil || st.id != stepID || i >= st.n {
		r.stray.Add(1)
		return
	}
	var o op
	if st.kind != KindPreload {
		o = r.w.schedule[i%len(r.w.schedule)]
	}
	st.record(now, i, o, m.Data)
}

// onStats hands pelm's stats to the pelm step in progress. They are
// msgpack, or JSON where pelm runs with --stats-json.
func (r *runner) onStats(m *nats.Msg) {
	st := r.cur.Load()
	if st == nil || st.sys != sysPelm {
		return
	}
	var s wire.Stats
	if err := msgpack.Unmarshal(m.Data, &s); err != nil {
		if err := json.Unmarshal(m.Data, &s); err != nil {
			return
		}
	}
	st.addStats(s)
}

// requestID is <token>-<step>-<index>.
func (r *runner) requestID(buf []byte, step uint64, i int) string {
	buf = append(buf[:0], r.token...)
	buf = append(buf, '-')
	buf = strconv.AppendUint(buf, step, 10)
	buf = append(buf, '-')
	buf = strconv.AppendUint(buf, uint64(i), 10)
	return string(buf)
}

func (r *runner) parseID(id string) (step uint64, i int, ok bool) {
	if len(id) < len(r.token)+4 || id[:len(r.token)] != r.token || id[len(r.token)] != '-' {
		return 0, 0, false
	}
	rest := id[len(r.token)+1:]
	var v uint64
	field, digits := 0, 0
	for j := 0; j <= len(rest); j++ {
		if j == len(rest) || rest[j] == '-' {
			if digits == 0 {
				return 0, 0, false
			}
			if field == 0 {
				step = v
			} else {
				i = int(v)
			}
			field++
			v, digits = 0, 0
			continue
		}
		c := rest[j]
		if c < '0' || c > '9' || digits > 18 {
			return 0, 0, false
		}
		v, digits = v*10+uint64(c-'0'), digits+1
	}
	return step, i, field == 2
}
