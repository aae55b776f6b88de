package bench

import (
	"context"
	"fmt"
	"math"
)

// maxProbes bounds the search of one system's highest sustainable rate.
const maxProbes = 14

// findMax searches the highest rate sys sustains (Step.Sustainable): it
// starts from the highest listed rate it sustained, or 1000/s, doubles
// until a rate fails (halves until one holds, if the first fails), then
// bisects until the bounds are within 5 %; it tries no rate above
// Config.MaxRate. Every probe is a step of the report.
func (r *runner) findMax(ctx context.Context, sys system) float64 {
	lo, hi := 0.0, 0.0
	for _, s := range r.rep.steps(systemNames[sys], KindRate) {
		switch {
		case s.Sustainable:
			lo = max(lo, s.OfferedPerS)
		case hi == 0 || s.OfferedPerS < hi:
			hi = s.OfferedPerS
		}
	}
	if hi > 0 && hi <= lo {
		hi = 0 // noise: a lower rate failed where a higher one held
	}
	probes := 0
	probe := func(rate float64) bool {
		probes++
		st := r.openLoop(ctx, sys, KindProbe, rate, r.cfg.Duration)
		s := st.report(r.cfg.MaxP99)
		r.rep.Steps = append(r.rep.Steps, s)
		return s.Sustainable
	}
	rate := DefaultStartRate
	if lo > 0 {
		rate = roundRate(2 * lo)
	}
	rate = min(rate, r.cfg.MaxRate)
	for hi == 0 && probes < maxProbes && ctx.Err() == nil {
		if !probe(rate) {
			hi = rate
			break
		}
		lo = rate
		if rate >= r.cfg.MaxRate {
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("%s sustained the highest rate tried (%s/s): its maximum is higher",
				systemNames[sys], rateStr(rate)))
			break
		}
		rate = min(roundRate(2*rate), r.cfg.MaxRate)
	}
	for lo == 0 && hi > 20 && probes < maxProbes && ctx.Err() == nil {
		rate = roundRate(hi / 2)
		if probe(rate) {
			lo = rate
		} else {
			hi = rate
		}
	}
	for lo > 0 && hi > 0 && (hi-lo)/lo > 0.05 && probes < maxProbes && ctx.Err() == nil {
		mid := roundRate((lo + hi) / 2)
		if mid <= lo || mid >= hi {
			break
		}
		if probe(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// roundRate rounds a rate to two significant figures, at least 1/s.
func roundRate(v float64) float64 {
	if v < 1 {
		return 0
	}
	mag := math.Pow(10, math.Floor(math.Log10(v))-1)
	return math.Max(1, math.Round(v/mag)*mag)
}
