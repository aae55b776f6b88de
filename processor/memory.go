package processor

import (
	"fmt"
	"time"

	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/wire"
)

// memory is one named memory and its filter, owned by the batch loop.
type memory struct {
	name   string
	mem    *pelm.Memory
	filter *filter.Filter

	// per batch, reused
	reqs    []int // indices into the batch's slots, in stream order
	ops     []pelm.Op
	results []pelm.Result

	resSubj [wire.OpForget + 1]string // default results subject by op
}

func (m *memory) stats() wire.MemoryStats {
	st := m.filter.State()
	return wire.MemoryStats{Size: m.mem.Len(), Capacity: m.mem.Capacity(), Threshold: st.Threshold, EMA: st.EMA}
}

// memories are the batch loop's memories by name. They are what a restore
// rebuilds: memories is the durable.Applier of the processor.
type memories struct {
	cfg    pelm.Config
	filter filter.Config
	max    int // memories created on demand, at most

	byName map[string]*memory
	order  []*memory // in creation order, for deterministic iteration

	res [1]pelm.Result // Replay's scratch
}

func newMemories(cfg Config) memories {
	mc := cfg.Memory
	if mc.Dim == 0 {
		mc.Dim = pelm.DefaultDim
	}
	return memories{cfg: mc, filter: cfg.Filter, max: cfg.MaxMemories, byName: map[string]*memory{}}
}

// get returns the memory called name, creating it when create is set;
// otherwise a missing memory is nil.
func (ms *memories) get(name string, create bool) (*memory, *wire.Error) {
	if m, ok := ms.byName[name]; ok || !create {
		return m, nil
	}
	if len(ms.byName) >= ms.max {
		return nil, wire.Errorf(wire.CodeBadMemory, "memory %q: the processor already holds its limit of %d memories", name, ms.max)
	}
	m, err := ms.create(name)
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "%v", err)
	}
	return m, nil
}

// create makes an empty memory called name (past the limit of memories if
// it must: what is durable is never dropped).
func (ms *memories) create(name string) (*memory, error) {
	mem, err := pelm.New(ms.cfg)
	if err != nil {
		return nil, fmt.Errorf("memory %q: %w", name, err)
	}
	f, err := filter.New(ms.filter)
	if err != nil {
		return nil, fmt.Errorf("memory %q: %w", name, err)
	}
	m := &memory{name: name, mem: mem, filter: f}
	ms.byName[name] = m
	ms.order = append(ms.order, m)
	return m, nil
}

func (ms *memories) restored(name string) (*memory, error) {
	if m, ok := ms.byName[name]; ok {
		return m, nil
	}
	return ms.create(name)
}

// Reset drops every memory (durable.Applier).
func (ms *memories) Reset() { ms.byName, ms.order = map[string]*memory{}, nil }

// Load stores restored items, oldest first (durable.Applier).
func (ms *memories) Load(name string, items []durable.Item) error {
	m, err := ms.restored(name)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	ops := make([]pelm.Op, len(items))
	for i := range items {
		it := &items[i]
		if len(it.Vector) != m.mem.Dim() {
			return fmt.Errorf("memory %q: item %q has %d values, the memory's dimension (--dim) is %d", name, it.ID, len(it.Vector), m.mem.Dim())
		}
		ops[i] = pelm.Op{Kind: pelm.OpStore, ID: it.ID, Vector: it.Vector, Phase: it.Phase, Confidence: it.Confidence, Meta: it.Meta}
	}
	if cap(m.results) < len(ops) {
		m.results = make([]pelm.Result, len(ops))
	}
	m.mem.Apply(ops, m.results[:len(ops)])
	return nil
}

// SetFilter restores a memory's filter (durable.Applier).
func (ms *memories) SetFilter(name string, st filter.State) error {
	m, err := ms.restored(name)
	if err != nil {
		return err
	}
	m.filter.SetState(st)
	return nil
}

// Replay runs a journalled effect again (durable.Applier).
func (ms *memories) Replay(name string, e *durable.Entry) error {
	m, err := ms.restored(name)
	if err != nil {
		return err
	}
	switch e.Kind {
	case durable.KindStore:
		if len(e.Vector) != m.mem.Dim() {
			return fmt.Errorf("memory %q: a store of %d values, the memory's dimension (--dim) is %d", name, len(e.Vector), m.mem.Dim())
		}
		m.mem.Apply([]pelm.Op{{Kind: pelm.OpStore, ID: e.ID, Vector: e.Vector, Phase: e.Phase, Confidence: e.Confidence, Meta: e.Meta}}, ms.res[:])
		e.Evicted, e.HasEvicted = ms.res[0].Evicted, ms.res[0].HasEvicted
	case durable.KindForget:
		m.mem.Apply([]pelm.Op{{Kind: pelm.OpForget, ID: e.ID}}, ms.res[:])
		e.Found = ms.res[0].Found
	}
	if e.Decided {
		m.filter.SetState(e.Filter)
	}
	return nil
}

// RestoreInfo says what a restore rebuilt.
type RestoreInfo struct {
	Memories int
	Items    int // read from the per-item state
	Replayed int // journal entries applied on top of it
	Took     time.Duration
}

// Restore rebuilds every memory from JetStream, as Run does before it
// consumes. It is exported for tools and benchmarks; do not call it while
// Run is running.
func (p *Processor) Restore() (RestoreInfo, error) {
	err := p.restore()
	return p.restored, err
}

// restore rebuilds the memories from what is durable, replacing whatever
// they held.
func (p *Processor) restore() error {
	info, err := p.store.Restore(&p.mems)
	if err != nil {
		return err
	}
	p.restored = RestoreInfo{Memories: len(p.mems.order), Items: info.Items, Replayed: info.Replayed, Took: info.Took}
	p.log.Info().Int("memories", len(p.mems.order)).Int("items", info.Items).Int("replayed", info.Replayed).
		Int("pending_results", info.Pending).Dur("took", info.Took).Msg("memories restored")
	return nil
}

// MemorySnapshot is a copy of one memory: its items, oldest first (stored
// vectors are unit length), and its filter's state.
type MemorySnapshot struct {
	Items  []pelm.Item
	Filter filter.State
}

// Snapshot copies every memory. Use it after Restore or after Run has
// returned, never while Run runs: the batch loop owns the memories.
func (p *Processor) Snapshot() map[string]MemorySnapshot {
	out := make(map[string]MemorySnapshot, len(p.mems.order))
	for _, m := range p.mems.order {
		var snap MemorySnapshot
		for it := range m.mem.Items {
			it.Vector = append([]float32(nil), it.Vector...)
			snap.Items = append(snap.Items, it)
		}
		snap.Filter = m.filter.State()
		out[m.name] = snap
	}
	return out
}
