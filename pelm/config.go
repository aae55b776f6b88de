package pelm

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// Limits and defaults of a Memory's configuration.
const (
	DefaultDim      = 384       // vector length used when Config.Dim is 0
	MaxDim          = 4096      // largest allowed Config.Dim
	DefaultCapacity = 20000     // item bound used when Config.Capacity is 0
	MaxCapacity     = 1_000_000 // largest allowed Config.Capacity
	MaxParallelism  = 256       // largest allowed Config.Parallelism
	MaxTopK         = 1000      // largest Op.TopK of a retrieve
	MaxIDLen        = 256       // largest Op.ID length in bytes
)

// Sentinel errors of Config.Validate, New and ParseEviction. They are
// returned wrapped with context; test them with errors.Is.
var (
	ErrDim         = errors.New("pelm: dimension out of range")
	ErrCapacity    = errors.New("pelm: capacity out of range")
	ErrEviction    = errors.New("pelm: unknown eviction policy")
	ErrParallelism = errors.New("pelm: parallelism out of range")
)

// Eviction is the policy that picks the item to drop when a store of a new id
// finds the memory full.
type Eviction uint8

const (
	// FIFO evicts the oldest item by insertion order (an upsert makes an
	// item the newest). It is the zero value.
	FIFO Eviction = iota
	// LowestConfidence evicts the item with the lowest confidence, the
	// oldest first among equal confidences.
	LowestConfidence
)

// String returns "fifo" or "confidence", the names ParseEviction accepts.
func (e Eviction) String() string {
	switch e {
	case FIFO:
		return "fifo"
	case LowestConfidence:
		return "confidence"
	}
	return fmt.Sprintf("Eviction(%d)", uint8(e))
}

// ParseEviction parses "fifo" or "confidence" (ASCII case-insensitive).
// Any other string is an error wrapping ErrEviction.
func ParseEviction(s string) (Eviction, error) {
	switch {
	case strings.EqualFold(s, "fifo"):
		return FIFO, nil
	case strings.EqualFold(s, "confidence"):
		return LowestConfidence, nil
	}
	return 0, fmt.Errorf("pelm: eviction %q (want fifo or confidence): %w", s, ErrEviction)
}

// MarshalText implements encoding.TextMarshaler (for flag.TextVar and
// encoders); unknown values are an error wrapping ErrEviction.
func (e Eviction) MarshalText() ([]byte, error) {
	if e > LowestConfidence {
		return nil, fmt.Errorf("pelm: eviction %d: %w", uint8(e), ErrEviction)
	}
	return []byte(e.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseEviction.
func (e *Eviction) UnmarshalText(text []byte) error {
	v, err := ParseEviction(string(text))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// Config describes a Memory. Every zero value means its documented default,
// so Config{} is a valid configuration.
type Config struct {
	// Dim is the length of every vector, 1..MaxDim; 0 means DefaultDim.
	Dim int
	// Capacity is the most items the memory holds, 1..MaxCapacity; 0 means
	// DefaultCapacity. The memory grows as it fills; capacity is a bound,
	// not a preallocation.
	Capacity int
	// Eviction is the policy applied when a store of a new id finds the
	// memory full; the zero value is FIFO.
	Eviction Eviction
	// Parallelism is the most goroutines one Apply uses to score a batch of
	// retrieves, 1..MaxParallelism; 0 means runtime.GOMAXPROCS(0) as seen
	// by New. Small batches run on the calling goroutine alone.
	Parallelism int
}

// Validate reports whether c is usable by New. Errors wrap ErrDim,
// ErrCapacity, ErrEviction or ErrParallelism.
func (c Config) Validate() error {
	if c.Dim < 0 || c.Dim > MaxDim {
		return fmt.Errorf("pelm: dim %d not in [1, %d]: %w", c.Dim, MaxDim, ErrDim)
	}
	if c.Capacity < 0 || c.Capacity > MaxCapacity {
		return fmt.Errorf("pelm: capacity %d not in [1, %d]: %w", c.Capacity, MaxCapacity, ErrCapacity)
	}
	if c.Eviction > LowestConfidence {
		return fmt.Errorf("pelm: eviction %d: %w", uint8(c.Eviction), ErrEviction)
	}
	if c.Parallelism < 0 || c.Parallelism > MaxParallelism {
		return fmt.Errorf("pelm: parallelism %d not in [1, %d]: %w", c.Parallelism, MaxParallelism, ErrParallelism)
	}
	return nil
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	if c.Dim == 0 {
		c.Dim = DefaultDim
	}
	if c.Capacity == 0 {
		c.Capacity = DefaultCapacity
	}
	if c.Parallelism == 0 {
		c.Parallelism = min(runtime.GOMAXPROCS(0), MaxParallelism)
	}
	return c
}
