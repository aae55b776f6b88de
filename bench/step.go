package bench

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/pelm-dev/pelm/wire"
)

// system is what a step drives.
type system uint8

const (
	sysPelm system = iota
	sysEcho
)

var systemNames = [2]string{"pelm", "echo"}

// Step kinds, as the report names them.
const (
	KindPreload = "preload"  // closed loop: the items stored before the load
	KindWarmup  = "warmup"   // open loop at 1000/s, not judged
	KindRate    = "rate"     // open loop at one of Config.Rates
	KindProbe   = "probe"    // open loop while searching the highest sustainable rate
	KindHalfMax = "half_max" // open loop at half of pelm's highest sustainable rate
)

const maxTrackedUS = 10 * 60 * 1_000_000 // latencies are tracked up to ten minutes

// step is one load phase against one system: its schedule and everything
// its results said.
type step struct {
	id       uint64
	sys      system
	kind     string
	rate     float64 // requests/s; 0 is the closed loop
	n        int     // requests
	duration time.Duration
	start    time.Time // intended send time of request 0
	sentAt   []atomic.Int64
	window   chan struct{} // closed loop: one token per request in flight

	sent, recv atomic.Int64 // read by the progress bar
	pubFail    atomic.Int64 // publishes that failed at once
	pubErrs    atomic.Int64 // publishes whose ack was an error
	lastSend   time.Time
	aborted    bool  // stopped sending: already unsustainable
	purged     int64 // unanswered after settling, removed from the stream

	mu         sync.Mutex
	seen       []bool
	closed     bool
	hist       *hdrhistogram.Histogram
	byOp       [numOps]*hdrhistogram.Histogram
	ok, errs   int64
	late, dups int64
	codes      map[string]int64
	lastResult time.Time
	size, nsz  [numOps]int64 // bytes and count of ok results, per op
	server     []wire.Stats
}

func newStep(id uint64, sys system, kind string, rate float64, n int, d time.Duration) *step {
	st := &step{
		id: id, sys: sys, kind: kind, rate: rate, n: n, duration: d,
		seen:  make([]bool, n),
		hist:  hdrhistogram.New(1, maxTrackedUS, 3),
		codes: map[string]int64{},
	}
	for o := range st.byOp {
		st.byOp[o] = hdrhistogram.New(1, maxTrackedUS, 3)
	}
	if rate == 0 {
		st.sentAt = make([]atomic.Int64, n)
	}
	return st
}

// intended is when request i was meant to go out: on the open loop's
// schedule, or when the closed loop sent it.
func (st *step) intended(i int) time.Time {
	if st.rate == 0 {
		return st.start.Add(time.Duration(st.sentAt[i].Load()))
	}
	return st.start.Add(time.Duration(float64(i) * 1e9 / st.rate))
}

// record takes the result of request i, received at now.
func (st *step) record(now time.Time, i int, o op, data []byte) {
	ok, code, err := scanResult(data)
	if err != nil {
		ok, code = false, "bad_result"
	}
	st.mu.Lock()
	if st.seen[i] {
		st.dups++
		st.mu.Unlock()
		return
	}
	st.seen[i] = true
	if st.closed {
		st.late++
		st.mu.Unlock()
		return
	}
	us := min(max(now.Sub(st.intended(i)).Microseconds(), 1), maxTrackedUS)
	_ = st.hist.RecordValue(us)
	_ = st.byOp[o].RecordValue(us)
	if ok {
		st.ok++
		st.size[o] += int64(len(data))
		st.nsz[o]++
	} else {
		st.errs++
		st.codes[code]++
	}
	st.lastResult = now
	st.mu.Unlock()
	st.recv.Add(1)
	if st.window != nil {
		select {
		case <-st.window:
		default:
		}
	}
}

// addStats takes pelm's stats published while the step runs.
func (st *step) addStats(s wire.Stats) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.closed {
		st.server = append(st.server, s)
	}
}

// close stops counting results: later ones are late.
func (st *step) close() {
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
}

// answered is how many requests have had a result, in time or late.
func (st *step) answered() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ok + st.errs + st.late
}

// meanSizes is the mean size of ok results per op; 0 where none came.
func (st *step) meanSizes() [numOps]int {
	st.mu.Lock()
	defer st.mu.Unlock()
	var m [numOps]int
	for o := range m {
		if st.nsz[o] > 0 {
			m[o] = int(st.size[o] / st.nsz[o])
		}
	}
	return m
}

// report turns the step's counts into its figures. Call it after close.
func (st *step) report(maxP99 time.Duration) Step {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := Step{
		System:      systemNames[st.sys],
		Kind:        st.kind,
		OfferedPerS: st.rate,
		DurationS:   st.duration.Seconds(),
		Sent:        st.sent.Load(),
		Results:     st.ok + st.errs,
		OK:          st.ok,
		Errors:      st.errs,
		PublishErrs: st.pubErrs.Load() + st.pubFail.Load(),
		Late:        st.late,
		Duplicates:  st.dups,
		Purged:      st.purged,
		Aborted:     st.aborted,
		LatencyUS:   latencyOf(st.hist),
		ByOp:        map[string]Latency{},
		Server:      slices.Clone(st.server),
	}
	// Requests not sent because the step was aborted or interrupted are
	// not missing; requests whose publish failed are.
	attempted := s.Sent + st.pubFail.Load()
	s.Missing = attempted - s.Results
	if attempted > 0 {
		s.ErrorRate = float64(s.Errors+s.Missing) / float64(attempted)
	}
	if el := st.lastResult.Sub(st.start).Seconds(); s.Results > 0 && el > 0 {
		s.ThroughputPerS = float64(s.Results) / el
	}
	if el := st.lastSend.Sub(st.start).Seconds(); s.Sent > 1 && el > 0 {
		s.SentPerS = float64(s.Sent-1) / el
	}
	for o, h := range st.byOp {
		if h.TotalCount() > 0 {
			s.ByOp[opNames[o]] = latencyOf(h)
		}
	}
	if len(st.codes) > 0 {
		s.ErrorCodes = make(map[string]int64, len(st.codes))
		for k, v := range st.codes {
			s.ErrorCodes[k] = v
		}
	}
	s.Sustainable = st.rate > 0 && !st.aborted && s.ErrorRate < 0.01 &&
		time.Duration(s.LatencyUS.P99)*time.Microsecond <= maxP99
	return s
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P95: h.ValueAtQuantile(95),
		P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9), Max: h.Max(), Mean: h.Mean(),
		Count: h.TotalCount(),
	}
}
