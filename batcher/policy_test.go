package batcher

import (
	"errors"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantErr  error
		wantSize int
		wantWait time.Duration
	}{
		{name: "zero means defaults", wantSize: DefaultMaxSize, wantWait: DefaultMaxWait},
		{name: "explicit", cfg: Config{MaxSize: 10, MaxWait: 5 * time.Millisecond}, wantSize: 10, wantWait: 5 * time.Millisecond},
		{name: "size one", cfg: Config{MaxSize: 1}, wantSize: 1, wantWait: DefaultMaxWait},
		{name: "NoWait", cfg: Config{MaxWait: NoWait}, wantSize: DefaultMaxSize, wantWait: NoWait},
		{name: "any negative wait is NoWait", cfg: Config{MaxWait: -time.Second}, wantSize: DefaultMaxSize, wantWait: NoWait},
		{name: "huge size", cfg: Config{MaxSize: 1 << 40}, wantSize: 1 << 40, wantWait: DefaultMaxWait},
		{name: "negative size", cfg: Config{MaxSize: -1}, wantErr: ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			p, err := NewPolicy(tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewPolicy() error = %v, want %v", err, tt.wantErr)
			}
			b, errB := New[int](tt.cfg)
			if !errors.Is(errB, tt.wantErr) {
				t.Fatalf("New() error = %v, want %v", errB, tt.wantErr)
			}
			if err != nil {
				return
			}
			if p.cfg.MaxSize != tt.wantSize || p.cfg.MaxWait != tt.wantWait {
				t.Fatalf("resolved %+v, want {%d %v}", p.cfg, tt.wantSize, tt.wantWait)
			}
			if c := cap(b.batch); c > initialCap || c > tt.wantSize {
				t.Fatalf("initial batch capacity %d", c)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	t0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	tests := []struct {
		name     string
		cfg      Config
		adds     []time.Duration // arrival offsets from t0
		wantFull []bool
		at       time.Duration // offset at which UntilNext is asked
		want     time.Duration
	}{
		{name: "fills at MaxSize", cfg: Config{MaxSize: 3, MaxWait: 10 * ms},
			adds: []time.Duration{0, ms, 2 * ms}, wantFull: []bool{false, false, true}, at: 2 * ms, want: 8 * ms},
		{name: "deadline from the first item", cfg: Config{MaxSize: 10, MaxWait: 10 * ms},
			adds: []time.Duration{3 * ms, 9 * ms}, wantFull: []bool{false, false}, at: 9 * ms, want: 4 * ms},
		{name: "exactly due", cfg: Config{MaxSize: 10, MaxWait: 10 * ms},
			adds: []time.Duration{0}, wantFull: []bool{false}, at: 10 * ms, want: 0},
		{name: "overdue is zero", cfg: Config{MaxSize: 10, MaxWait: 10 * ms},
			adds: []time.Duration{0}, wantFull: []bool{false}, at: time.Second, want: 0},
		{name: "NoWait is always due", cfg: Config{MaxSize: 10, MaxWait: NoWait},
			adds: []time.Duration{0}, wantFull: []bool{false}, at: 0, want: 0},
		{name: "size one is full at once", cfg: Config{MaxSize: 1},
			adds: []time.Duration{0}, wantFull: []bool{true}, at: 0, want: DefaultMaxWait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Twice: Reset must forget the first batch entirely.
			for round := range 2 {
				base := t0.Add(time.Duration(round) * time.Hour)
				for i, d := range tt.adds {
					if full := p.Add(base.Add(d)); full != tt.wantFull[i] {
						t.Fatalf("round %d: Add #%d full = %v, want %v", round, i, full, tt.wantFull[i])
					}
				}
				if p.Len() != len(tt.adds) {
					t.Fatalf("Len() = %d, want %d", p.Len(), len(tt.adds))
				}
				if got := p.UntilNext(base.Add(tt.at)); got != tt.want {
					t.Fatalf("round %d: UntilNext = %v, want %v", round, got, tt.want)
				}
				p.Reset()
			}
		})
	}
}

func TestPolicyAllocs(t *testing.T) {
	p, _ := NewPolicy(Config{MaxSize: 4})
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		if p.Add(now) {
			p.Reset()
		}
		p.UntilNext(now)
	}); n != 0 {
		t.Fatalf("Policy allocates %v times per item", n)
	}
}
