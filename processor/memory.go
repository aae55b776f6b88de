package processor

import (
	"context"
	"fmt"
	"time"

	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/wire"
)

// memory is one named memory and its filter, owned by the batch loop.
type memory struct {
	name     string
	cfg      wire.MemoryConfig
	reserved int64 // its bytes at full capacity (pelm.Config.BytesAtCapacity)
	mem      *pelm.Memory
	filter   *filter.Filter

	// per batch, reused
	reqs    []int // indices into the batch's slots, in stream order
	ops     []pelm.Op
	results []pelm.Result

	resSubj [wire.NumOps]string // default results subject by op
}

func (m *memory) stats() wire.MemoryStats {
	st := m.filter.State()
	return wire.MemoryStats{Size: m.mem.Len(), Capacity: m.mem.Capacity(), Threshold: st.Threshold, EMA: st.EMA}
}

// memories are the batch loop's memories by name. They are what a restore
// rebuilds: memories is the durable.Applier of the processor.
type memories struct {
	base     pelm.Config       // what the server sets for every memory (parallelism)
	defaults wire.MemoryConfig // a memory's settings where a create gives none, and of a memory made by a store
	budget   *budget           // shared by every partition of the process
	reserved int64             // what this set's memories reserve

	byName map[string]*memory
	order  []*memory // in creation order, for deterministic iteration

	res [1]pelm.Result // Replay's scratch
}

func newMemories(cfg Config, b *budget) memories {
	mc := cfg.Memory
	if mc.Dim == 0 {
		mc.Dim = pelm.DefaultDim
	}
	if mc.Capacity == 0 {
		mc.Capacity = pelm.DefaultCapacity
	}
	thr := cfg.Filter.Threshold
	if thr == 0 {
		thr = filter.DefaultThreshold
	}
	return memories{base: mc, budget: b, byName: map[string]*memory{},
		defaults: wire.MemoryConfig{Dim: mc.Dim, Capacity: mc.Capacity, Eviction: mc.Eviction.String(),
			FilterThreshold: thr, FilterAdaptive: !cfg.Filter.Fixed}}
}

func (ms *memories) dim(name string) int {
	if m, ok := ms.byName[name]; ok {
		return m.cfg.Dim
	}
	return ms.defaults.Dim
}

// add makes a memory with settings cfg, within the limit of memories.
func (ms *memories) add(name string, cfg wire.MemoryConfig) (*memory, *wire.Error) {
	if e := ms.budget.admit(name, cfg, ms.pelmConfig(cfg).BytesAtCapacity()); e != nil {
		return nil, e
	}
	m, err := ms.create(name, cfg)
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "%v", err)
	}
	return m, nil
}

func (ms *memories) create(name string, cfg wire.MemoryConfig) (*memory, error) {
	if _, err := pelm.ParseEviction(cfg.Eviction); err != nil {
		return nil, fmt.Errorf("memory %q: %w", name, err)
	}
	pc := ms.pelmConfig(cfg)
	mem, err := pelm.New(pc)
	if err != nil {
		return nil, fmt.Errorf("memory %q: %w", name, err)
	}
	f, err := filter.New(filter.Config{Threshold: cfg.FilterThreshold, Fixed: !cfg.FilterAdaptive})
	if err != nil {
		return nil, fmt.Errorf("memory %q: %w", name, err)
	}
	m := &memory{name: name, cfg: cfg, reserved: pc.BytesAtCapacity(), mem: mem, filter: f}
	ms.reserved += m.reserved
	ms.budget.take(m.reserved)
	ms.byName[name] = m
	ms.order = append(ms.order, m)
	return m, nil
}

// drop deletes the memory called name.
func (ms *memories) drop(name string) {
	m, ok := ms.byName[name]
	if !ok {
		return
	}
	delete(ms.byName, name)
	ms.reserved -= m.reserved
	ms.budget.give(m.reserved)
	for i, o := range ms.order {
		if o == m {
			ms.order = append(ms.order[:i], ms.order[i+1:]...)
			break
		}
	}
}

func (ms *memories) restored(name string) (*memory, error) {
	if m, ok := ms.byName[name]; ok {
		return m, nil
	}
	return ms.create(name, ms.defaults)
}

// Create makes a restored memory with its settings (durable.Applier).
func (ms *memories) Create(name string, cfg wire.MemoryConfig) error {
	ms.drop(name)
	_, err := ms.create(name, cfg)
	return err
}

// Reset drops every memory (durable.Applier).
func (ms *memories) Reset() {
	for _, m := range ms.order {
		ms.budget.give(m.reserved)
	}
	ms.byName, ms.order, ms.reserved = map[string]*memory{}, nil, 0
}

// pelmConfig is the memory package's config for settings cfg, which were
// validated (an eviction the wire does not know falls back to fifo).
func (ms *memories) pelmConfig(cfg wire.MemoryConfig) pelm.Config {
	pc := ms.base
	pc.Dim, pc.Capacity = cfg.Dim, cfg.Capacity
	pc.Eviction, _ = pelm.ParseEviction(cfg.Eviction)
	return pc
}

func mib(b int64) int64 { return (b + 1<<20 - 1) >> 20 }

// Load stores restored items, oldest first (durable.Applier), each with
// the time it was stored, so that those expired since expire again.
func (ms *memories) Load(name string, items []durable.Item) ([]string, error) {
	m, err := ms.restored(name)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, nil
	}
	ops := make([]pelm.Op, len(items))
	for i := range items {
		it := &items[i]
		if len(it.Vector) != m.mem.Dim() {
			return nil, fmt.Errorf("memory %q: item %q has %d values, the memory's dimension is %d", name, it.ID, len(it.Vector), m.mem.Dim())
		}
		ops[i] = pelm.Op{Kind: pelm.OpStore, ID: it.ID, Vector: it.Vector, Phase: it.Phase, Confidence: it.Confidence, Meta: it.Meta,
			Time: it.Time, Expires: it.Expires}
	}
	if cap(m.results) < len(ops) {
		m.results = make([]pelm.Result, len(ops))
	}
	m.mem.Apply(ops, m.results[:len(ops)])
	return m.mem.Expired(), nil
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
	if e.Created != nil {
		if err := ms.Create(name, *e.Created); err != nil {
			return err
		}
	}
	if e.Kind == durable.KindDrop {
		ms.drop(name)
		return nil
	}
	m, err := ms.restored(name)
	if err != nil {
		return err
	}
	switch e.Kind {
	case durable.KindStore:
		if len(e.Vector) != m.mem.Dim() {
			return fmt.Errorf("memory %q: a store of %d values, the memory's dimension (--dim) is %d", name, len(e.Vector), m.mem.Dim())
		}
		m.mem.Apply([]pelm.Op{{Kind: pelm.OpStore, ID: e.ID, Vector: e.Vector, Phase: e.Phase, Confidence: e.Confidence, Meta: e.Meta,
			Time: e.Time, Expires: e.Expires}}, ms.res[:])
		e.Evicted, e.HasEvicted = ms.res[0].Evicted, ms.res[0].HasEvicted
	case durable.KindForget:
		m.mem.Apply([]pelm.Op{{Kind: pelm.OpForget, ID: e.ID, Time: e.Time}}, ms.res[:])
		e.Found = ms.res[0].Found
	default:
		m.mem.Expire(e.Time)
	}
	e.Expired = m.mem.Expired()
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

// Restore rebuilds every memory of every partition from JetStream, as
// the owners of the partitions do before they consume. It is for tools and
// benchmarks; do not call it while Run is running.
func (p *Processor) Restore() (RestoreInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	st, err := p.js.Stream(ctx, wire.RequestsStream)
	cancel()
	if err != nil {
		return RestoreInfo{}, fmt.Errorf("processor: restore: %w", err)
	}
	p.parts = p.cfg.Partitions
	if n, ok := p.partitionsOf(st.CachedInfo().Config.SubjectTransform); ok {
		p.parts = n
	}
	var total RestoreInfo
	start := time.Now()
	p.all = p.all[:0]
	for k := range p.parts {
		pt := p.newPartition(k)
		if err := pt.restore(); err != nil {
			return total, err
		}
		p.all = append(p.all, pt)
		total.Memories += pt.restored.Memories
		total.Items += pt.restored.Items
		total.Replayed += pt.restored.Replayed
	}
	total.Took = time.Since(start)
	return total, nil
}

// restore rebuilds the partition's memories from what is durable,
// replacing whatever they held.
func (p *partition) restore() error {
	info, err := p.store.Restore(&p.mems)
	if err != nil {
		return err
	}
	p.restored = RestoreInfo{Memories: len(p.mems.order), Items: info.Items, Replayed: info.Replayed, Took: info.Took}
	if len(p.mems.order) > 0 || info.Replayed > 0 {
		p.log.Info().Int("partition", p.id).Int("memories", len(p.mems.order)).Int("items", info.Items).Int("replayed", info.Replayed).
			Int("pending_results", info.Pending).Dur("took", info.Took).Msg("memories restored")
	}
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
	out := map[string]MemorySnapshot{}
	for _, pt := range p.all {
		pt.snapshot(out)
	}
	return out
}

func (p *partition) snapshot(out map[string]MemorySnapshot) {
	for _, m := range p.mems.order {
		var snap MemorySnapshot
		for it := range m.mem.Items {
			it.Vector = append([]float32(nil), it.Vector...)
			snap.Items = append(snap.Items, it)
		}
		snap.Filter = m.filter.State()
		out[m.name] = snap
	}
}
