package processor

import (
	"fmt"
	"time"

	"github.com/pelm-dev/pelm/batcher"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults of Config's zero values.
const (
	DefaultPrefix        = wire.DefaultPrefix
	DefaultTolerance     = 0.15
	DefaultTopK          = 5
	DefaultStatsInterval = 5 * time.Second
	DefaultAckWait       = 30 * time.Second
	DefaultMaxDeliver    = 5
	DefaultMaxMemories   = 1024
	DefaultPartitions    = 16
	DefaultLease         = 10 * time.Second

	// ConsumerName is the durable consumer of the requests stream.
	ConsumerName = "pelm-processor"

	// MaxPartitions bounds Partitions: each is a consumer and a goroutine.
	MaxPartitions = 256
)

// ExactPhase as Config.Tolerance makes the default tolerance 0: a zero
// Tolerance means DefaultTolerance.
const ExactPhase = -1.0

// Config configures a Processor. Zero values mean the documented defaults.
type Config struct {
	Prefix string        // subject prefix; "" means "pelm"
	Memory pelm.Config   // dimension, capacity and eviction of every memory
	Filter filter.Config // initial threshold and adaptivity of every memory's filter
	Batch  batcher.Config

	Tolerance float64 // for requests without one; 0 means 0.15, ExactPhase means 0
	TopK      int     // for requests without one; 0 means 5

	StatsInterval time.Duration // 0 means 5s
	StatsJSON     bool          // publish stats as JSON instead of msgpack
	ReplyAllow    []string      // patterns a Pelm-Reply-To must match; nil means [">"]
	MaxMemories   int           // memories created on demand, at most; 0 means 1024
	// MaxBytes bounds the RAM the memories may reserve (vectors and their
	// bookkeeping, each memory at its full capacity): a create or a first
	// store that would pass it is over_budget. 0 means no bound.
	MaxBytes int64

	// Replicas is the replica count of every stream and consumer the
	// processor creates (3 on a JetStream cluster); 0 means 1. Streams and
	// consumers that exist are used as they are.
	Replicas int

	// Partitions is how many partitions a new requests stream files the
	// memories into; an existing stream keeps its own. 0 means 16. The
	// processes on one prefix share the partitions (PROTOCOL.md, Scale-out).
	Partitions int
	// Lease is how long a process that stopped renewing its membership
	// (killed, paused, cut off) keeps its partitions before the others
	// take them over. 0 means 10s.
	Lease time.Duration

	AckWait    time.Duration // of a created consumer; 0 means 30s
	MaxDeliver int           // of a created consumer; 0 means 5

	Logger zerolog.Logger // zero value: no logging

	// Registerer, when set, receives the processor's Prometheus series
	// (pelm_requests_total and the others of metrics.go).
	Registerer prometheus.Registerer

	// Hook, when set, is called at the points of the batch loop named by
	// the Hook* constants. It is for fault tests (crash or stall at a
	// chosen point); production leaves it nil. The batch loops of several
	// partitions call it at once.
	Hook func(point string)
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	switch {
	case c.Tolerance == 0:
		c.Tolerance = DefaultTolerance
	case c.Tolerance == ExactPhase:
		c.Tolerance = 0
	}
	if c.TopK == 0 {
		c.TopK = DefaultTopK
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.ReplyAllow == nil {
		c.ReplyAllow = []string{">"}
	}
	if c.MaxMemories == 0 {
		c.MaxMemories = DefaultMaxMemories
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.Batch.MaxSize == 0 {
		c.Batch.MaxSize = 256
	}
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	d := c.withDefaults()
	if !wire.ValidSubject(d.Prefix, false) || d.Prefix[0] == '$' {
		return fmt.Errorf("%w: prefix %q is not a valid subject", ErrConfig, d.Prefix)
	}
	if err := d.Memory.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := d.Filter.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := d.Batch.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if d.Tolerance < 0 || d.Tolerance > 1 {
		return fmt.Errorf("%w: tolerance %v is outside [0, 1]", ErrConfig, d.Tolerance)
	}
	if d.TopK < 1 || d.TopK > wire.MaxTopK {
		return fmt.Errorf("%w: top-k %d is outside [1, %d]", ErrConfig, d.TopK, wire.MaxTopK)
	}
	if d.StatsInterval < 0 || d.AckWait < 0 || d.MaxDeliver < -1 || d.MaxMemories < 1 || d.MaxBytes < 0 || d.Replicas < 0 || d.Replicas > 5 {
		return fmt.Errorf("%w: stats interval, ack wait, max deliver and max memories must be positive, max bytes not negative, replicas 1 to 5", ErrConfig)
	}
	if d.Partitions < 1 || d.Partitions > MaxPartitions {
		return fmt.Errorf("%w: partitions %d is outside [1, %d]", ErrConfig, d.Partitions, MaxPartitions)
	}
	if d.Lease < time.Second {
		return fmt.Errorf("%w: lease %v is under a second", ErrConfig, d.Lease)
	}
	if _, err := wire.NewReplyRules(d.Prefix, d.ReplyAllow); err != nil {
		return err
	}
	return nil
}
