package processor

import (
	"fmt"

	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/pelm"
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

	resSubj [OpForget + 1]string // default results subject by op
}

// resultSubject is the default results subject of a slot's request,
// built once per memory and op rather than once per result.
func (p *Processor) resultSubject(s *slot) string {
	o := &s.out
	if s.mem == nil || o.op == OpInvalid {
		return p.resPrefix + o.memory + "." + o.opName
	}
	if s.mem.resSubj[o.op] == "" {
		s.mem.resSubj[o.op] = p.resPrefix + o.memory + "." + o.opName
	}
	return s.mem.resSubj[o.op]
}

// MemoryStats is one memory's state as stats and metrics report it.
type MemoryStats struct {
	Size      int     `msgpack:"size" json:"size"`
	Capacity  int     `msgpack:"capacity" json:"capacity"`
	Threshold float64 `msgpack:"threshold" json:"threshold"`
	EMA       float64 `msgpack:"ema" json:"ema"`
}

func (m *memory) stats() MemoryStats {
	st := m.filter.State()
	return MemoryStats{Size: m.mem.Len(), Capacity: m.mem.Capacity(), Threshold: st.Threshold, EMA: st.EMA}
}

// memoryFor returns the memory called name, creating it when create is
// set; otherwise a missing memory is nil.
func (p *Processor) memoryFor(name string, create bool) (*memory, *RequestError) {
	if m, ok := p.memories[name]; ok || !create {
		return m, nil
	}
	if len(p.memories) >= p.cfg.MaxMemories {
		return nil, reqErr(CodeBadMemory, "memory %q: the processor already holds its limit of %d memories", name, p.cfg.MaxMemories)
	}
	m, err := p.newMemory(name)
	if err != nil {
		return nil, reqErr(CodeInternal, "%v", err)
	}
	return m, nil
}

// newMemory creates an empty memory called name.
func (p *Processor) newMemory(name string) (*memory, error) {
	mem, err := pelm.New(p.cfg.Memory)
	if err != nil {
		return nil, fmt.Errorf("memory %q: %w", name, err)
	}
	f, err := filter.New(p.cfg.Filter)
	if err != nil {
		return nil, fmt.Errorf("memory %q: %w", name, err)
	}
	m := &memory{name: name, mem: mem, filter: f}
	p.memories[name] = m
	p.order = append(p.order, m)
	return m, nil
}
