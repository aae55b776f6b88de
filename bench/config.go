package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/processor"
	"github.com/pelm-dev/pelm/wire"
)

// Defaults of Config's zero values.
const (
	DefaultMemory     = "bench"
	DefaultEchoPrefix = "pelmbench"
	DefaultDim        = 384
	DefaultPreload    = 20000
	DefaultDuration   = 5 * time.Second
	DefaultTimeout    = 5 * time.Second
	DefaultMaxP99     = 100 * time.Millisecond
	DefaultWindow     = 1024
	DefaultWarmup     = time.Second
	DefaultWarmupRate = 1000.0
	DefaultStartRate  = 1000.0
	DefaultMaxRate    = 1e6
)

// NoPreload as Config.Preload stores nothing before the load.
const NoPreload = -1

// DefaultRates are the offered rates of a Config with neither Rates nor
// FindMax.
var DefaultRates = []float64{1000, 5000, 10000}

// Config configures Run. Zero values mean the documented defaults.
type Config struct {
	Prefix string // pelm's subject prefix; "" means "pelm"
	Memory string // the memory the load goes to; "" means "bench"
	// Memories spreads the load and the preload over that many memories,
	// Memory-0 to Memory-(n-1), request i to memory i mod n, so that
	// several processes on partitions share it. 0 or 1 means Memory alone.
	Memories   int
	EchoPrefix string // subject prefix of the echo floor; "" means "pelmbench"
	// Inbox is the prefix of the run's reply subject; "" means
	// "_INBOX.pelmbench". pelm must allow it (--reply-allow).
	Inbox string
	// KeepResults binds a stream (ResultsStream) to the run's reply
	// subject, as a user who keeps results does: pelm then acknowledges a
	// request only once that stream has stored its result.
	KeepResults bool

	Dim     int // vector length, pelm's --dim; 0 means 384
	Preload int // items stored before the load; 0 means 20000, NoPreload none

	Rates    []float64     // offered rates in requests/s; nil means DefaultRates unless FindMax
	FindMax  bool          // search each system's highest sustainable rate
	MaxRate  float64       // the highest rate the search tries; 0 means 1e6
	Duration time.Duration // of each rate and each probe; 0 means 5s
	// Timeout is how long a step waits for results after its last
	// intended send; a result later than that counts as missing. 0 means
	// 5s.
	Timeout time.Duration
	MaxP99  time.Duration // a rate whose p99 is above it is not sustainable; 0 means 100ms
	Window  int           // requests in flight while preloading; 0 means 1024
	Warmup  time.Duration // of each system at 1000/s before the rates; 0 means 1s, negative none

	Mix    Mix    // op weights; the zero Mix means store=1,retrieve=1,process=1
	Phases Phases // how request phases are drawn
	Seed   uint64 // of vectors, phases and op order
	// TTL, when positive, is the ttl of the load's stores and processes
	// (not the preload's): it measures what expiry costs.
	TTL time.Duration

	// Batch is the echo's batching, which should be pelm's; the zero
	// value is batcher's defaults (256, 1ms), as pelm's.
	Batch batcher.Config

	// Progress receives a progress bar (on a terminal) or a line per
	// step; nil prints nothing.
	Progress io.Writer
	// Settings are recorded in the report as given (the processor's
	// flags, say).
	Settings map[string]any
}

// MaxMemories bounds Config.Memories.
const MaxMemories = 4096

// memoryNames are the memories the load goes to.
func (c Config) memoryNames() []string {
	if c.Memories <= 1 {
		return []string{c.Memory}
	}
	out := make([]string, c.Memories)
	for i := range out {
		out[i] = c.Memory + "-" + strconv.Itoa(i)
	}
	return out
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = processor.DefaultPrefix
	}
	if c.Memory == "" {
		c.Memory = DefaultMemory
	}
	if c.Memories == 0 {
		c.Memories = 1
	}
	if c.EchoPrefix == "" {
		c.EchoPrefix = DefaultEchoPrefix
	}
	if c.Inbox == "" {
		c.Inbox = "_INBOX.pelmbench"
	}
	if c.Dim == 0 {
		c.Dim = DefaultDim
	}
	switch c.Preload {
	case 0:
		c.Preload = DefaultPreload
	case NoPreload:
		c.Preload = 0
	}
	if c.Rates == nil && !c.FindMax {
		c.Rates = DefaultRates
	}
	if c.MaxRate == 0 {
		c.MaxRate = DefaultMaxRate
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxP99 == 0 {
		c.MaxP99 = DefaultMaxP99
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Warmup == 0 {
		c.Warmup = DefaultWarmup
	}
	if c.Mix == (Mix{}) {
		c.Mix = DefaultMix
	}
	if c.Batch.MaxSize == 0 {
		c.Batch.MaxSize = batcher.DefaultMaxSize
	}
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	d := c.withDefaults()
	for _, s := range []struct{ what, v string }{{"prefix", d.Prefix}, {"echo prefix", d.EchoPrefix}, {"inbox", d.Inbox}} {
		if !validSubject(s.v) {
			return fmt.Errorf("%w: %s %q is not a subject without wildcards", ErrConfig, s.what, s.v)
		}
	}
	if d.Prefix == d.EchoPrefix {
		return fmt.Errorf("%w: the echo prefix must differ from pelm's (%q)", ErrConfig, d.Prefix)
	}
	if d.Memories < 1 || d.Memories > MaxMemories {
		return fmt.Errorf("%w: memories %d is outside [1, %d]", ErrConfig, d.Memories, MaxMemories)
	}
	for _, m := range d.memoryNames() {
		if !wire.ValidMemoryName(m) {
			return fmt.Errorf("%w: memory %q: want 1 to 64 of A-Z a-z 0-9 _ -", ErrConfig, m)
		}
	}
	if d.Dim < 1 || d.Dim > pelm.MaxDim {
		return fmt.Errorf("%w: dim %d is outside [1, %d]", ErrConfig, d.Dim, pelm.MaxDim)
	}
	if d.Preload < 0 {
		return fmt.Errorf("%w: preload %d is negative", ErrConfig, d.Preload)
	}
	for _, r := range d.Rates {
		if !(r > 0) || r > DefaultMaxRate {
			return fmt.Errorf("%w: rate %v is outside (0, %v]", ErrConfig, r, DefaultMaxRate)
		}
	}
	if !(d.MaxRate > 0) || d.MaxRate > DefaultMaxRate {
		return fmt.Errorf("%w: max rate %v is outside (0, %v]", ErrConfig, d.MaxRate, DefaultMaxRate)
	}
	if d.Duration < 0 || d.Timeout < 0 || d.MaxP99 < 0 || d.Window < 1 {
		return fmt.Errorf("%w: duration, timeout, max p99 and window must be positive", ErrConfig)
	}
	if err := d.Mix.validate(); err != nil {
		return err
	}
	if d.Phases != WakeSleep && d.Phases != Uniform {
		return fmt.Errorf("%w: phases %d", ErrConfig, d.Phases)
	}
	if err := d.Batch.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Mix is the relative weight of each op in the load.
type Mix struct {
	Store, Retrieve, Process, Forget int
}

// DefaultMix is the Mix of a zero Config: one of each op but forget.
var DefaultMix = Mix{Store: 1, Retrieve: 1, Process: 1}

func (m Mix) weights() [numOps]int {
	return [numOps]int{opStore: m.Store, opRetrieve: m.Retrieve, opProcess: m.Process, opForget: m.Forget}
}

func (m Mix) validate() error {
	total := 0
	for _, w := range m.weights() {
		if w < 0 {
			return fmt.Errorf("%w: mix weights must not be negative", ErrConfig)
		}
		total += w
	}
	if total == 0 {
		return fmt.Errorf("%w: the mix has no op", ErrConfig)
	}
	return nil
}

// StoreOnly reports whether the mix sends only stores.
func (m Mix) StoreOnly() bool {
	return m.Store > 0 && m.Retrieve == 0 && m.Process == 0 && m.Forget == 0
}

// String returns the mix as ParseMix reads it, ops of weight 0 left out.
func (m Mix) String() string {
	var b strings.Builder
	for op, w := range m.weights() {
		if w == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(opNames[op] + "=" + strconv.Itoa(w))
	}
	return b.String()
}

// ParseMix reads "store=1,retrieve=2,process=1,forget=0": each op's weight,
// an op left out has weight 0.
func ParseMix(s string) (Mix, error) {
	var w [numOps]int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return Mix{}, fmt.Errorf("%w: mix %q: want op=weight", ErrConfig, part)
		}
		op, known := opByName(strings.TrimSpace(name))
		if !known {
			return Mix{}, fmt.Errorf("%w: mix %q: unknown op (store, retrieve, process, forget)", ErrConfig, part)
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 {
			return Mix{}, fmt.Errorf("%w: mix %q: weight must be a whole number ≥ 0", ErrConfig, part)
		}
		w[op] = n
	}
	m := Mix{Store: w[opStore], Retrieve: w[opRetrieve], Process: w[opProcess], Forget: w[opForget]}
	return m, m.validate()
}

// Phases is how the phases of requests are drawn.
type Phases uint8

const (
	// WakeSleep draws 0.1 or 0.9 with even odds: the ancestor's wake and
	// sleep phases. It is the zero value.
	WakeSleep Phases = iota
	// Uniform draws uniformly from [0, 1].
	Uniform
)

// String returns "wakesleep" or "uniform", the names ParsePhases accepts.
func (p Phases) String() string {
	switch p {
	case WakeSleep:
		return "wakesleep"
	case Uniform:
		return "uniform"
	}
	return "Phases(" + strconv.Itoa(int(p)) + ")"
}

// ParsePhases reads "wakesleep" or "uniform" (ASCII case-insensitive).
func ParsePhases(s string) (Phases, error) {
	switch {
	case strings.EqualFold(s, "wakesleep"):
		return WakeSleep, nil
	case strings.EqualFold(s, "uniform"):
		return Uniform, nil
	}
	return 0, fmt.Errorf("%w: phases %q: want wakesleep or uniform", ErrConfig, s)
}

// validSubject: a subject prefix of ours, not under the reserved $.
func validSubject(s string) bool {
	return s != "" && s[0] != '$' && wire.ValidSubject(s, false)
}
