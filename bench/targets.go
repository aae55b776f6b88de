package bench

import (
	"fmt"
	"strings"
	"time"
)

// The targets of the Python service pelm replaces (its README).
const (
	AncestorP50        = 30 * time.Millisecond
	AncestorP95        = 120 * time.Millisecond
	AncestorP99        = 200 * time.Millisecond
	AncestorThroughput = 100.0 // results/s
	AncestorErrorRate  = 0.01
)

// pelm's own targets (issue "bench").
const (
	TargetStoreRatio = 0.70                 // store-only max rate over the echo's
	TargetHalfMaxP99 = 5 * time.Millisecond // p99 at half the max sustainable rate
)

// compare fills r.Compare: pelm over echo at every rate both ran.
func (r *Report) compare() {
	r.Compare = []Ratio{}
	for _, p := range r.steps("pelm", KindRate, KindHalfMax) {
		e := r.find("echo", p.Kind, p.OfferedPerS)
		if e == nil {
			continue
		}
		r.Compare = append(r.Compare, Ratio{
			Kind: p.Kind, OfferedPerS: p.OfferedPerS,
			Throughput: ratio(p.ThroughputPerS, e.ThroughputPerS),
			P50:        ratio(float64(p.LatencyUS.P50), float64(e.LatencyUS.P50)),
			P95:        ratio(float64(p.LatencyUS.P95), float64(e.LatencyUS.P95)),
			P99:        ratio(float64(p.LatencyUS.P99), float64(e.LatencyUS.P99)),
			Max:        ratio(float64(p.LatencyUS.Max), float64(e.LatencyUS.Max)),
		})
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// judge fills r.Targets from the steps.
func (r *Report) judge(cfg Config) {
	judged := r.steps("pelm", KindRate, KindHalfMax)
	latency := func(name string, want time.Duration, pick func(Latency) int64) Target {
		t := Target{Name: "ancestor " + name, Want: "≤ " + ms(want.Microseconds()) + " at every offered rate"}
		if len(judged) == 0 {
			t.Got, t.Status = "no rate was run", StatusNotMeasured
			return t
		}
		var missed []string
		worst := int64(0)
		for _, s := range judged {
			v := pick(s.LatencyUS)
			worst = max(worst, v)
			if s.Missing == int64(s.Sent) || time.Duration(v)*time.Microsecond > want {
				missed = append(missed, fmt.Sprintf("%s at %s/s", ms(v), rateStr(s.OfferedPerS)))
			}
		}
		t.Got, t.Status = "worst "+ms(worst), StatusMet
		if len(missed) > 0 {
			t.Got, t.Status = "missed: "+strings.Join(missed, ", "), StatusMissed
		}
		return t
	}
	r.Targets = []Target{
		latency("P50", AncestorP50, func(l Latency) int64 { return l.P50 }),
		latency("P95", AncestorP95, func(l Latency) int64 { return l.P95 }),
		latency("P99", AncestorP99, func(l Latency) int64 { return l.P99 }),
	}

	// Throughput: the best that pelm sustained with < 1 % errors.
	thr := Target{Name: "ancestor throughput", Want: fmt.Sprintf("≥ %s results/s with < 1 %% errors (a whole step)", rateStr(AncestorThroughput))}
	best := 0.0
	for _, s := range r.steps("pelm", KindRate, KindProbe, KindHalfMax) {
		if !s.Aborted && s.ErrorRate < AncestorErrorRate {
			best = max(best, s.ThroughputPerS)
		}
	}
	thr.Got, thr.Status = rateStr(best)+" results/s", status(best >= AncestorThroughput)
	r.Targets = append(r.Targets, thr)

	errT := Target{Name: "ancestor error rate", Want: "< 1 % at every offered rate"}
	if len(judged) == 0 {
		errT.Got, errT.Status = "no rate was run", StatusNotMeasured
	} else {
		var missed []string
		worst := 0.0
		for _, s := range judged {
			worst = max(worst, s.ErrorRate)
			if s.ErrorRate >= AncestorErrorRate {
				missed = append(missed, fmt.Sprintf("%s at %s/s", pct(s.ErrorRate), rateStr(s.OfferedPerS)))
			}
		}
		errT.Got, errT.Status = "worst "+pct(worst), StatusMet
		if len(missed) > 0 {
			errT.Got, errT.Status = "missed: "+strings.Join(missed, ", "), StatusMissed
		}
	}
	r.Targets = append(r.Targets, errT)

	store := Target{Name: "store-only throughput vs echo floor", Want: fmt.Sprintf("≥ %.0f %% of the echo's highest sustainable rate", 100*TargetStoreRatio)}
	switch {
	case !cfg.Mix.StoreOnly() || r.Max == nil || !r.Config.Echo:
		store.Got, store.Status = "run with --mix store=1 --find-max (and the echo)", StatusNotMeasured
	case r.Max.EchoPerS == 0:
		store.Got, store.Status = "the echo sustained no rate", StatusNotMeasured
	default:
		store.Got = fmt.Sprintf("%.0f %% (pelm %s/s, echo %s/s)", 100*r.Max.Ratio, rateStr(r.Max.PelmPerS), rateStr(r.Max.EchoPerS))
		store.Status = status(r.Max.Ratio >= TargetStoreRatio)
	}
	r.Targets = append(r.Targets, store)

	half := Target{Name: "p99 at half the highest sustainable rate", Want: "≤ " + ms(TargetHalfMaxP99.Microseconds())}
	hs := r.steps("pelm", KindHalfMax)
	switch {
	case r.Max == nil:
		half.Got, half.Status = "run with --find-max", StatusNotMeasured
	case len(hs) == 0:
		half.Got, half.Status = "pelm sustained no rate", StatusNotMeasured
	default:
		s := hs[len(hs)-1]
		half.Got = fmt.Sprintf("%s at %s/s", ms(s.LatencyUS.P99), rateStr(s.OfferedPerS))
		half.Status = status(time.Duration(s.LatencyUS.P99)*time.Microsecond <= TargetHalfMaxP99 && s.Missing == 0)
	}
	r.Targets = append(r.Targets, half)
}

func status(met bool) string {
	if met {
		return StatusMet
	}
	return StatusMissed
}

// ms renders microseconds as milliseconds.
func ms(us int64) string {
	switch {
	case us >= 100_000:
		return fmt.Sprintf("%.0f ms", float64(us)/1000)
	case us >= 10_000:
		return fmt.Sprintf("%.1f ms", float64(us)/1000)
	}
	return fmt.Sprintf("%.2f ms", float64(us)/1000)
}

func pct(f float64) string {
	if f == 0 {
		return "0 %"
	}
	if f < 0.001 {
		return fmt.Sprintf("%.3f %%", 100*f)
	}
	return fmt.Sprintf("%.1f %%", 100*f)
}

// rateStr renders a rate with thousands separators.
func rateStr(v float64) string {
	n := int64(v + 0.5)
	s := fmt.Sprint(n)
	if n < 10_000 {
		if v < 10 && v != float64(n) {
			return fmt.Sprintf("%.1f", v)
		}
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
