package batcher

import (
	"errors"
	"fmt"
	"time"
)

const (
	// NoWait as MaxWait flushes what is ready without waiting for more.
	NoWait time.Duration = -1
	// DefaultMaxSize is the MaxSize of a zero Config.
	DefaultMaxSize = 256
	// DefaultMaxWait is the MaxWait of a zero Config.
	DefaultMaxWait = time.Millisecond
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("batcher: invalid config")

// Config configures a Policy and a Batcher. The zero Config means
// DefaultMaxSize items or DefaultMaxWait, whichever comes first.
type Config struct {
	// MaxSize flushes a batch when it holds this many items; 0 means
	// DefaultMaxSize.
	MaxSize int
	// MaxWait flushes a batch this long after its first item arrived; 0
	// means DefaultMaxWait. Any negative value, such as NoWait, means never
	// wait: flush as soon as the input has nothing more ready.
	MaxWait time.Duration
}

// Validate reports whether c is usable, wrapping ErrConfig if not.
func (c Config) Validate() error {
	if c.MaxSize < 0 {
		return fmt.Errorf("%w: MaxSize %d is negative", ErrConfig, c.MaxSize)
	}
	return nil
}

// withDefaults returns c with its zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxWait < 0 {
		c.MaxWait = NoWait
	}
	return c
}

// Policy decides when the batch in hand is due. It only counts items and
// remembers when the first one arrived; the caller holds the items. Make one
// with NewPolicy: the zero Policy reports every batch full and due at once.
type Policy struct {
	cfg   Config // with defaults applied
	n     int
	first time.Time
}

// NewPolicy returns a Policy configured by cfg, or an error wrapping
// ErrConfig.
func NewPolicy(cfg Config) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Policy{cfg: cfg.withDefaults()}, nil
}

// Add counts an item that arrived at now and reports whether the batch is
// full, i.e. holds MaxSize items.
func (p *Policy) Add(now time.Time) (full bool) {
	if p.n == 0 {
		p.first = now
	}
	p.n++
	return p.n >= p.cfg.MaxSize
}

// Len returns the number of items counted since the last Reset.
func (p *Policy) Len() int { return p.n }

// UntilNext returns the time left at now before the batch in hand is due:
// MaxWait after its first item arrived, never negative, and 0 with NoWait.
// It is meaningless when the batch is empty.
func (p *Policy) UntilNext(now time.Time) time.Duration {
	if p.cfg.MaxWait < 0 {
		return 0
	}
	return max(p.cfg.MaxWait-now.Sub(p.first), 0)
}

// Reset empties the batch, after a flush.
func (p *Policy) Reset() { p.n = 0 }
