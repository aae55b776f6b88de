package filter

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name      string
		threshold float64
		wantErr   error
	}{
		{name: "zero means default", threshold: 0},
		{name: "min", threshold: MinThreshold},
		{name: "max", threshold: MaxThreshold},
		{name: "inside", threshold: 0.42},
		{name: "off the hundredths, kept as given", threshold: 0.6000000000000001},
		{name: "below min", threshold: 0.29, wantErr: ErrThreshold},
		{name: "one ulp below min", threshold: math.Nextafter(MinThreshold, 0), wantErr: ErrThreshold},
		{name: "above max", threshold: 0.91, wantErr: ErrThreshold},
		{name: "negative", threshold: -0.5, wantErr: ErrThreshold},
		{name: "NaN", threshold: math.NaN(), wantErr: ErrThreshold},
		{name: "+Inf", threshold: math.Inf(1), wantErr: ErrThreshold},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Threshold: tt.threshold}
			if err := cfg.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			f, err := New(cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			want := tt.threshold
			if want == 0 {
				want = DefaultThreshold
			}
			if s := f.State(); s.Threshold != want || s.EMA != 0.5 {
				t.Fatalf("initial state %+v, want {%v 0.5}", s, want)
			}
		})
	}
}

// refFilter is the generator's run() in shared/anchors/moral_filter_golden.py
// written plainly, in float64: each product converted, so that it is rounded
// before the sum, as in Python.
type refFilter struct {
	t, ema float64
	fixed  bool
}

func (r *refFilter) decide(v float64) bool {
	accepted := v >= 0.90 || (v >= 0.30 && v >= r.t)
	s := 0.0
	if accepted {
		s = 1.0
	}
	one, w := 1.0, 0.1 // variables: Python computes 1.0 - 0.1 in float64
	r.ema = float64(0.1*s) + float64((one-w)*r.ema)
	if r.fixed {
		return accepted
	}
	err := r.ema - 0.5
	if err > 0.05 {
		r.t = min(r.t+0.05, 0.90)
	} else if err < -0.05 {
		r.t = max(r.t-0.05, 0.30)
	}
	return accepted
}

// Value codes; they are relative to the reference threshold at the time of
// the decision.
const (
	atT    = -1 // exactly the threshold
	belowT = -2 // one ulp below it
	aboveT = -3 // one ulp above it
)

func repeat(v float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func concat(parts ...[]float64) []float64 {
	var s []float64
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

func randomValues(seed uint64, n int) []float64 {
	r := rand.New(rand.NewPCG(seed, seed))
	s := make([]float64, n)
	for i := range s {
		switch r.IntN(5) {
		case 0:
			s[i] = atT
		case 1:
			s[i] = belowT
		case 2:
			s[i] = aboveT
		case 3:
			s[i] = float64(r.IntN(21)) / 20 // the hundredths the threshold passes near
		default:
			s[i] = r.Float64()
		}
	}
	return s
}

func decideCases() []struct {
	name   string
	start  float64 // 0 means default
	values []float64
} {
	return []struct {
		name   string
		start  float64
		values []float64
	}{
		{
			name:   "one accept from 0.5 raises t (ema 0.55000000000000004)",
			values: []float64{0.6},
		},
		{
			name:   "one reject from 0.5 keeps t (ema 0.45)",
			values: []float64{0.1},
		},
		{
			name: "climb to 0.90 clamp then fall to 0.30 clamp",
			values: concat(
				repeat(0.95, 20),  // fast accept path, t clamps at 0.90
				repeat(atT, 5),    // at t = 0.90 accepted
				repeat(belowT, 5), // just below rejected
				repeat(0.1, 45),   // fast reject path, t clamps at 0.30
				repeat(atT, 3),    // 0.30 accepted
				repeat(belowT, 3), // just below rejected by the fast path
			),
		},
		{
			name: "the hundredth below a drifted threshold is rejected",
			// t rises to 0.7000000000000002: 0.7 is below it.
			values: concat(repeat(1, 4), repeat(0.7, 3), repeat(aboveT, 3)),
		},
		{
			name: "alternating runs around the threshold",
			values: concat(
				repeat(atT, 12), repeat(belowT, 12),
				[]float64{0.9, 0.899, 0.3, 0.299, 0.5, 0.55, 0.45, 0, 1},
				repeat(atT, 4), repeat(belowT, 20), repeat(atT, 15), repeat(aboveT, 6),
			),
		},
		{
			name:   "start at max",
			start:  0.9,
			values: concat(repeat(0.899, 10), repeat(0.9, 30), repeat(belowT, 25)),
		},
		{
			name:   "start at min",
			start:  0.3,
			values: concat(repeat(0.299, 30), repeat(0.3, 30), repeat(atT, 10)),
		},
		{
			name:   "off-grid start",
			start:  0.333,
			values: concat(repeat(atT, 30), repeat(belowT, 40), randomValues(7, 40)),
		},
		{name: "random 1", values: randomValues(1, 500)},
		{name: "random 2", values: randomValues(2, 500)},
		{name: "random 3", start: 0.7, values: randomValues(3, 500)},
	}
}

func value(code, t float64) float64 {
	switch code {
	case atT:
		return t
	case belowT:
		return math.Nextafter(t, 0)
	case aboveT:
		return math.Nextafter(t, 1)
	}
	return code
}

func TestDecide(t *testing.T) {
	for _, fixed := range []bool{false, true} {
		for _, tt := range decideCases() {
			name := tt.name
			if fixed {
				name = "fixed/" + name
			}
			t.Run(name, func(t *testing.T) {
				start := tt.start
				if start == 0 {
					start = 0.5
				}
				f, err := New(Config{Threshold: tt.start, Fixed: fixed})
				if err != nil {
					t.Fatal(err)
				}
				ref := &refFilter{t: start, ema: 0.5, fixed: fixed}
				for i, code := range tt.values {
					v := value(code, ref.t)
					wantT := ref.t
					wantAcc := ref.decide(v)
					acc, th := f.Decide(v)
					if acc != wantAcc || th != wantT {
						t.Fatalf("step %d value %v: got (%v, %v), want (%v, %v)", i, v, acc, th, wantAcc, wantT)
					}
					if s := f.State(); s.Threshold != ref.t || s.EMA != ref.ema {
						t.Fatalf("step %d: state %+v, want {%v %v}", i, s, ref.t, ref.ema)
					}
				}
				if fixed && ref.t != start {
					t.Fatal("reference moved a fixed threshold")
				}
			})
		}
	}
}

// TestDecideClampsReached guards the table: it must exercise both clamps.
func TestDecideClampsReached(t *testing.T) {
	var hitMin, hitMax bool
	for _, tt := range decideCases() {
		ref := &refFilter{t: 0.5, ema: 0.5}
		if tt.start != 0 {
			ref.t = tt.start
		}
		for _, code := range tt.values {
			ref.decide(value(code, ref.t))
			hitMin = hitMin || ref.t == 0.3
			hitMax = hitMax || ref.t == 0.9
		}
	}
	if !hitMin || !hitMax {
		t.Fatalf("clamps reached: min %v, max %v", hitMin, hitMax)
	}
}

// TestDecideBoundary pins the example of the package doc: the first
// acceptance from the start state leaves the dead band by 4.4e-17 and raises
// the threshold, as the ancestor does.
func TestDecideBoundary(t *testing.T) {
	f, _ := New(Config{})
	f.Decide(1)
	s := f.State()
	if got := strconv.FormatFloat(s.EMA, 'g', 17, 64); got != "0.55000000000000004" || s.EMA != 0.55 {
		t.Fatalf("ema after one accept = %s, want 0.55000000000000004 (the double 0.55)", got)
	}
	if d := s.EMA - 0.5; strconv.FormatFloat(d, 'g', 17, 64) != "0.050000000000000044" || !(d > 0.05) {
		t.Fatalf("ema - 0.5 = %v, want 0.050000000000000044 > 0.05", d)
	}
	if s.Threshold != 0.55 || strconv.FormatFloat(s.Threshold, 'g', -1, 64) != "0.55" {
		t.Fatalf("threshold after one accept = %v, want 0.55", s.Threshold)
	}
	// From here on the threshold drifts off the hundredths, as in the ancestor.
	for _, want := range []struct{ ema, t float64 }{
		{0.5950000000000001, 0.6000000000000001},
		{0.6355000000000001, 0.6500000000000001},
		{0.67195, 0.7000000000000002},
	} {
		f.Decide(1)
		if s := f.State(); s.EMA != want.ema || s.Threshold != want.t {
			t.Fatalf("state %+v, want {%v %v}", s, want.t, want.ema)
		}
	}
}

// TestNoFusion checks that Decide rounds the product 0.9·ema before the sum,
// at states where a fused multiply-add would give another ema.
func TestNoFusion(t *testing.T) {
	found := 0
	ref := &refFilter{t: 0.5, ema: 0.5}
	for _, v := range randomValues(11, 2000) {
		ema := ref.ema
		x := 0.0
		if ref.decide(value(v, ref.t)) {
			x = 1
		}
		if math.FMA(0.9, ema, 0.1*x) == ref.ema {
			continue
		}
		found++
		f, _ := New(Config{})
		f.SetState(State{Threshold: 0.5, EMA: ema})
		f.Decide(x)
		if got := f.State().EMA; got != ref.ema {
			t.Fatalf("from ema %v: ema %v (%#016x), want %v (%#016x)",
				ema, got, math.Float64bits(got), ref.ema, math.Float64bits(ref.ema))
		}
	}
	if found == 0 {
		t.Fatal("no state where fusion would differ; the test checks nothing")
	}
	t.Logf("%d states where fusion would differ", found)
}

// TestEMAKeep checks that the constant 1 − 0.1, exact in Go, is the double
// Python computes for 1.0 − 0.1.
func TestEMAKeep(t *testing.T) {
	one, w := 1.0, emaWeight
	if keep := one - w; keep != emaKeep {
		t.Fatalf("1.0 - 0.1 = %v, emaKeep = %v", keep, float64(emaKeep))
	}
}

func TestSetState(t *testing.T) {
	tests := []struct {
		name string
		in   State
		want State
	}{
		{name: "kept", in: State{Threshold: 0.65, EMA: 0.71}, want: State{Threshold: 0.65, EMA: 0.71}},
		{name: "kept bit for bit", in: State{Threshold: 0.7000000000000002, EMA: 0.5950000000000001},
			want: State{Threshold: 0.7000000000000002, EMA: 0.5950000000000001}},
		{name: "clamped low", in: State{Threshold: 0.1, EMA: -1}, want: State{Threshold: 0.3, EMA: 0}},
		{name: "clamped high", in: State{Threshold: 2, EMA: 3}, want: State{Threshold: 0.9, EMA: 1}},
		{name: "infinities clamped", in: State{Threshold: math.Inf(-1), EMA: math.Inf(1)}, want: State{Threshold: 0.3, EMA: 1}},
		{name: "NaN restores start", in: State{Threshold: math.NaN(), EMA: math.NaN()}, want: State{Threshold: 0.4, EMA: 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(Config{Threshold: 0.4})
			if err != nil {
				t.Fatal(err)
			}
			f.SetState(tt.in)
			if got := f.State(); got != tt.want {
				t.Fatalf("State() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSetStateResumes(t *testing.T) {
	// A filter restored from another's state decides as the original would.
	a, _ := New(Config{})
	vals := randomValues(9, 200)
	for _, v := range vals[:100] {
		a.Decide(value(v, a.State().Threshold))
	}
	b, _ := New(Config{})
	b.SetState(a.State())
	for i, v := range vals[100:] {
		x := value(v, a.State().Threshold)
		ga, ta := a.Decide(x)
		gb, tb := b.Decide(x)
		if ga != gb || ta != tb || a.State() != b.State() {
			t.Fatalf("step %d: original (%v, %v, %+v), restored (%v, %v, %+v)", i, ga, ta, a.State(), gb, tb, b.State())
		}
	}
}

func TestDecideNaN(t *testing.T) {
	f, _ := New(Config{})
	if acc, _ := f.Decide(math.NaN()); acc {
		t.Fatal("NaN accepted")
	}
}

func TestDecideAllocs(t *testing.T) {
	f, _ := New(Config{})
	v := 0.0
	if n := testing.AllocsPerRun(1000, func() {
		f.Decide(v)
		v = math.Mod(v+0.037, 1)
	}); n != 0 {
		t.Fatalf("Decide allocates %v times per call", n)
	}
}

func BenchmarkDecide(b *testing.B) {
	f, _ := New(Config{})
	vals := randomValues(1, 1024)
	for i, v := range vals {
		vals[i] = max(v, 0)
	}
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		if acc, _ := f.Decide(vals[i&1023]); acc {
			n++
		}
	}
	_ = n
}
