package filter

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
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
		{name: "below min", threshold: 0.29, wantErr: ErrThreshold},
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

// Value codes in thousandths; the negative ones are relative to the
// reference threshold at the time of the decision.
const (
	atT    = -1 // exactly the threshold
	belowT = -2 // one thousandth below it
)

// refFilter is the protocol computed exactly: thresholds and values in
// integer thousandths, ema as a rational.
type refFilter struct {
	t     int // thousandths
	ema   *big.Rat
	fixed bool
}

func newRef(t int, fixed bool) *refFilter {
	return &refFilter{t: t, ema: big.NewRat(1, 2), fixed: fixed}
}

func (r *refFilter) decide(v int) bool {
	acc := v >= 900 || (v >= 300 && v >= r.t)
	x := int64(0)
	if acc {
		x = 1
	}
	// ema = x/10 + 9/10·ema
	r.ema.Mul(r.ema, big.NewRat(9, 10))
	r.ema.Add(r.ema, big.NewRat(x, 10))
	if r.fixed {
		return acc
	}
	d := new(big.Rat).Sub(r.ema, big.NewRat(1, 2))
	switch {
	case d.Cmp(big.NewRat(1, 20)) > 0:
		r.t = min(r.t+50, 900)
	case d.Cmp(big.NewRat(-1, 20)) < 0:
		r.t = max(r.t-50, 300)
	}
	return acc
}

func repeat(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func concat(parts ...[]int) []int {
	var s []int
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

func randomValues(seed uint64, n int) []int {
	r := rand.New(rand.NewPCG(seed, seed))
	s := make([]int, n)
	for i := range s {
		switch r.IntN(4) {
		case 0:
			s[i] = atT
		case 1:
			s[i] = belowT
		case 2:
			s[i] = 50 * r.IntN(21) // the threshold grid and beyond
		default:
			s[i] = r.IntN(1001)
		}
	}
	return s
}

func decideCases() []struct {
	name   string
	start  int // thousandths; 0 means default
	values []int
} {
	return []struct {
		name   string
		start  int
		values []int
	}{
		{
			name:   "one accept from 0.5 keeps t (ema 0.55 exactly)",
			values: []int{600},
		},
		{
			name:   "one reject from 0.5 keeps t (ema 0.45 exactly)",
			values: []int{100},
		},
		{
			name: "climb to 0.90 clamp then fall to 0.30 clamp",
			values: concat(
				repeat(950, 20),   // fast accept path, t clamps at 0.90
				repeat(atT, 5),    // at t = 0.90 accepted
				repeat(belowT, 5), // 0.899 rejected
				repeat(100, 45),   // fast reject path, t clamps at 0.30
				repeat(atT, 3),    // 0.30 accepted
				repeat(belowT, 3), // 0.299 rejected by the fast path
			),
		},
		{
			name: "alternating runs around the threshold",
			values: concat(
				repeat(atT, 12), repeat(belowT, 12),
				[]int{900, 899, 300, 299, 500, 550, 450, 0, 1000},
				repeat(atT, 4), repeat(belowT, 20), repeat(atT, 15),
			),
		},
		{
			name:   "start at max",
			start:  900,
			values: concat(repeat(899, 10), repeat(900, 30), repeat(belowT, 25)),
		},
		{
			name:   "start at min",
			start:  300,
			values: concat(repeat(299, 30), repeat(300, 30), repeat(atT, 10)),
		},
		{
			name:   "off-grid start",
			start:  333,
			values: concat(repeat(atT, 30), repeat(belowT, 40), randomValues(7, 40)),
		},
		{name: "random 1", values: randomValues(1, 500)},
		{name: "random 2", values: randomValues(2, 500)},
		{name: "random 3", start: 700, values: randomValues(3, 500)},
	}
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
					start = 500
				}
				f, err := New(Config{Threshold: float64(tt.start) / 1000, Fixed: fixed})
				if err != nil {
					t.Fatal(err)
				}
				ref := newRef(start, fixed)
				moved := false
				for i, code := range tt.values {
					v := code
					switch code {
					case atT:
						v = ref.t
					case belowT:
						v = ref.t - 1
					}
					wantT := float64(ref.t) / 1000
					wantAcc := ref.decide(v)
					acc, th := f.Decide(float64(v) / 1000)
					if acc != wantAcc || th != wantT {
						t.Fatalf("step %d value %d/1000: got (%v, %v), want (%v, %v)", i, v, acc, th, wantAcc, wantT)
					}
					s := f.State()
					if want := float64(ref.t) / 1000; s.Threshold != want {
						t.Fatalf("step %d: threshold after = %v, want %v", i, s.Threshold, want)
					}
					if want, _ := ref.ema.Float64(); math.Abs(s.EMA-want) > 1e-12 {
						t.Fatalf("step %d: ema = %v, want %v", i, s.EMA, want)
					}
					moved = moved || ref.t != start
				}
				if fixed && moved {
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
		ref := newRef(500, false)
		if tt.start != 0 {
			ref.t = tt.start
		}
		for _, v := range tt.values {
			switch v {
			case atT:
				v = ref.t
			case belowT:
				v = ref.t - 1
			}
			ref.decide(v)
			hitMin = hitMin || ref.t == 300
			hitMax = hitMax || ref.t == 900
		}
	}
	if !hitMin || !hitMax {
		t.Fatalf("clamps reached: min %v, max %v", hitMin, hitMax)
	}
}

func TestDecideFloatTrap(t *testing.T) {
	// In float64, 0.1 + 0.9*0.5 is 0.55000000000000004: without the slack
	// the first acceptance would raise t.
	f, _ := New(Config{})
	f.Decide(1)
	if s := f.State(); s.Threshold != 0.5 {
		t.Fatalf("threshold after one accept = %v, want 0.5", s.Threshold)
	}
	f.Decide(1) // ema 0.595
	if s := f.State(); s.Threshold != 0.55 {
		t.Fatalf("threshold after two accepts = %v, want 0.55", s.Threshold)
	}
	for range 2 {
		f.Decide(1)
	}
	if s := f.State(); s.Threshold != 0.65 {
		t.Fatalf("threshold after four accepts = %v, want 0.65 (the literal)", s.Threshold)
	}
}

func TestSetState(t *testing.T) {
	tests := []struct {
		name string
		in   State
		want State
	}{
		{name: "kept", in: State{Threshold: 0.65, EMA: 0.71}, want: State{Threshold: 0.65, EMA: 0.71}},
		{name: "rounded to grid", in: State{Threshold: 0.6000000000000001, EMA: 0.5}, want: State{Threshold: 0.6, EMA: 0.5}},
		{name: "clamped low", in: State{Threshold: 0.1, EMA: -1}, want: State{Threshold: 0.3, EMA: 0}},
		{name: "clamped high", in: State{Threshold: 2, EMA: 3}, want: State{Threshold: 0.9, EMA: 1}},
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
		a.Decide(float64(max(v, 0)) / 1000)
	}
	b, _ := New(Config{})
	b.SetState(a.State())
	for i, v := range vals[100:] {
		x := float64(max(v, 0)) / 1000
		ga, ta := a.Decide(x)
		gb, tb := b.Decide(x)
		if ga != gb || ta != tb {
			t.Fatalf("step %d: original (%v, %v), restored (%v, %v)", i, ga, ta, gb, tb)
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
	vals := make([]float64, 1024)
	for i, v := range randomValues(1, len(vals)) {
		vals[i] = float64(max(v, 0)) / 1000
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
