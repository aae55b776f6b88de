package processor

import (
	"sync"

	"github.com/pelm-dev/pelm/wire"
)

// budget bounds what all the memories of a process hold, whichever
// partition they belong to: how many there are (--max-memories) and the
// RAM they reserve at full capacity (--max-bytes). Partitions run on
// goroutines of their own, so it takes a lock; it is touched only when a
// memory is made or dropped.
type budget struct {
	mu       sync.Mutex
	max      int   // memories, at most
	maxBytes int64 // 0: no bound
	count    int
	reserved int64
}

// admit reports why a new memory of cfg, reserving need bytes, may not be
// made, or nil.
func (b *budget) admit(name string, cfg wire.MemoryConfig, need int64) *wire.Error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.count >= b.max {
		return wire.Errorf(wire.CodeBadMemory, "memory %q: the processor already holds its limit of %d memories", name, b.max)
	}
	if b.maxBytes > 0 && b.reserved+need > b.maxBytes {
		return wire.Errorf(wire.CodeOverBudget, "memory %q: %d items of %d dimensions need %d MiB at full capacity; %d MiB of the --max-bytes %d MiB are free",
			name, cfg.Capacity, cfg.Dim, mib(need), mib(b.maxBytes-b.reserved), mib(b.maxBytes))
	}
	return nil
}

// take counts a memory made (also one restored, which is never refused).
func (b *budget) take(bytes int64) {
	b.mu.Lock()
	b.count++
	b.reserved += bytes
	b.mu.Unlock()
}

// give counts a memory dropped, or handed to another process.
func (b *budget) give(bytes int64) {
	b.mu.Lock()
	b.count--
	b.reserved -= bytes
	b.mu.Unlock()
}

// total is the RAM the memories reserve.
func (b *budget) total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reserved
}
