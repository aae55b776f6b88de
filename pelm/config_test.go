package pelm

import (
	"errors"
	"runtime"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
	}{
		{name: "zero is defaults", cfg: Config{}},
		{name: "smallest", cfg: Config{Dim: 1, Capacity: 1, Parallelism: 1}},
		{name: "largest", cfg: Config{Dim: MaxDim, Capacity: MaxCapacity, Eviction: LowestConfidence, Parallelism: MaxParallelism}},
		{name: "negative dim", cfg: Config{Dim: -1}, wantErr: ErrDim},
		{name: "dim too large", cfg: Config{Dim: MaxDim + 1}, wantErr: ErrDim},
		{name: "negative capacity", cfg: Config{Capacity: -5}, wantErr: ErrCapacity},
		{name: "capacity too large", cfg: Config{Capacity: MaxCapacity + 1}, wantErr: ErrCapacity},
		{name: "unknown eviction", cfg: Config{Eviction: 2}, wantErr: ErrEviction},
		{name: "negative parallelism", cfg: Config{Parallelism: -1}, wantErr: ErrParallelism},
		{name: "parallelism too large", cfg: Config{Parallelism: MaxParallelism + 1}, wantErr: ErrParallelism},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			m, err := New(tt.cfg)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("New() error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && m == nil {
				t.Fatal("New returned nil without error")
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Dim() != DefaultDim || m.Capacity() != DefaultCapacity || m.Eviction() != FIFO || m.Len() != 0 {
		t.Fatalf("defaults: %v", m)
	}
	if got, want := len(m.search.workers), min(runtime.GOMAXPROCS(0), MaxParallelism); got != want {
		t.Fatalf("parallelism %d, want %d", got, want)
	}
}

func TestParseEviction(t *testing.T) {
	tests := []struct {
		in      string
		want    Eviction
		wantErr bool
	}{
		{in: "fifo", want: FIFO},
		{in: "FIFO", want: FIFO},
		{in: "confidence", want: LowestConfidence},
		{in: "Confidence", want: LowestConfidence},
		{in: "", wantErr: true},
		{in: "lifo", wantErr: true},
		{in: "lowest_confidence", wantErr: true},
		{in: " fifo", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEviction(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseEviction(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrEviction) {
					t.Fatalf("error %v does not wrap ErrEviction", err)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("ParseEviction(%q) = %v, want %v", tt.in, got, tt.want)
			}
			var e Eviction
			if err := e.UnmarshalText([]byte(tt.in)); err != nil || e != tt.want {
				t.Fatalf("UnmarshalText(%q) = %v, %v", tt.in, e, err)
			}
		})
	}
}

func TestEvictionString(t *testing.T) {
	tests := []struct {
		e       Eviction
		want    string
		wantErr bool
	}{
		{e: FIFO, want: "fifo"},
		{e: LowestConfidence, want: "confidence"},
		{e: 9, want: "Eviction(9)", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.e.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			b, err := tt.e.MarshalText()
			if (err != nil) != tt.wantErr {
				t.Fatalf("MarshalText error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil {
				if back, err := ParseEviction(string(b)); err != nil || back != tt.e {
					t.Fatalf("round trip %q: %v, %v", b, back, err)
				}
			}
		})
	}
}

func TestOpKindString(t *testing.T) {
	for k, want := range map[OpKind]string{OpStore: "store", OpRetrieve: "retrieve", OpForget: "forget", 0: "OpKind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(k), got, want)
		}
	}
}
