package filter

import (
	"errors"
	"fmt"
	"math"
)

const (
	// MinThreshold and MaxThreshold bound the threshold. A value at or above
	// MaxThreshold is always accepted, a value below MinThreshold always
	// rejected.
	MinThreshold = 0.30
	MaxThreshold = 0.90
	// DefaultThreshold is the initial threshold when Config.Threshold is 0.
	DefaultThreshold = 0.50
	// DefaultMoral is the moral value of a request that has neither moral
	// nor text.
	DefaultMoral = 0.8
	// Step is how far the threshold moves after a decision that leaves the
	// dead band.
	Step = 0.05
)

const (
	emaStart  = 0.5
	emaWeight = 0.1  // weight of the newest decision in ema
	band      = 0.05 // half-width of the dead band around emaStart
	// emaKeep is the ancestor's 1.0 - 0.1, which rounds to the same double
	// as the constant 0.9 (TestEMAKeep).
	emaKeep = 1 - emaWeight
)

// ErrThreshold reports a threshold outside [MinThreshold, MaxThreshold].
var ErrThreshold = errors.New("filter: threshold out of range")

// Config configures a Filter. The zero Config is the protocol's default: an
// adaptive filter starting at DefaultThreshold.
type Config struct {
	// Threshold is the initial threshold; 0 means DefaultThreshold,
	// otherwise it must lie in [MinThreshold, MaxThreshold].
	Threshold float64
	// Fixed keeps the threshold where it starts. The zero value is adaptive.
	Fixed bool
}

// Validate reports whether c is usable, wrapping ErrThreshold if not.
func (c Config) Validate() error {
	if c.Threshold == 0 {
		return nil
	}
	// Written so that NaN fails too.
	if !(c.Threshold >= MinThreshold && c.Threshold <= MaxThreshold) {
		return fmt.Errorf("%w: %v not in [%v, %v]", ErrThreshold, c.Threshold, MinThreshold, MaxThreshold)
	}
	return nil
}

// State is the whole mutable state of a Filter, for persistence and stats.
type State struct {
	Threshold float64 // current threshold, in [MinThreshold, MaxThreshold]
	EMA       float64 // moving average of acceptances, in [0, 1]
}

// Filter is the adaptive moral filter of one memory.
type Filter struct {
	t     float64
	ema   float64
	start float64 // configured initial threshold, restored for a NaN
	fixed bool
}

// New returns a Filter configured by cfg, or an error wrapping ErrThreshold.
func New(cfg Config) (*Filter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := cfg.Threshold
	if t == 0 {
		t = DefaultThreshold
	}
	return &Filter{t: t, ema: emaStart, start: t, fixed: cfg.Fixed}, nil
}

// Decide reports whether value (a moral score in [0, 1]) is accepted and the
// threshold it was compared with, then adapts the filter, in float64 with
// each operation rounded (see the package doc). NaN is rejected.
func (f *Filter) Decide(value float64) (accepted bool, threshold float64) {
	threshold = f.t
	accepted = value >= MaxThreshold || (value >= MinThreshold && value >= threshold)
	x := 0.0
	if accepted {
		x = 1
	}
	// The conversions round each product, so that no platform fuses the
	// sum into a multiply-add.
	f.ema = float64(emaWeight*x) + float64(emaKeep*f.ema)
	if f.fixed {
		return accepted, threshold
	}
	switch err := f.ema - emaStart; {
	case err > band:
		f.t = min(f.t+Step, MaxThreshold)
	case err < -band:
		f.t = max(f.t-Step, MinThreshold)
	}
	return accepted, threshold
}

// State returns the filter's current state.
func (f *Filter) State() State {
	return State{Threshold: f.t, EMA: f.ema}
}

// SetState restores a state saved by State, e.g. after a restart; a state in
// range is restored bit for bit, so the filter goes on exactly as before. The
// persisted state is not trusted: the threshold is clamped to its range, ema
// clamped to [0, 1], and a NaN replaced by the configured initial value, so
// that the filter's invariants hold whatever was read.
func (f *Filter) SetState(s State) {
	f.t = f.start
	if !math.IsNaN(s.Threshold) {
		f.t = min(max(s.Threshold, MinThreshold), MaxThreshold)
	}
	f.ema = emaStart
	if !math.IsNaN(s.EMA) {
		f.ema = min(max(s.EMA, 0), 1)
	}
}
