package processor

import (
	"fmt"

	"github.com/pelm-dev/pelm/wire"
)

// manage runs a memory-management request (PROTOCOL.md, Memories), after
// every request before it in the batch has run.
func (p *partition) manage(s *slot) {
	o := &s.out
	m := p.mems.byName[o.Memory]
	switch o.Op {
	case wire.OpCreate:
		want := s.req.Settings(p.mems.defaults)
		if m != nil {
			if m.cfg != want {
				s.fail(wire.Errorf(wire.CodeExists, "memory %q exists with other settings: %s", o.Memory, describe(m.cfg)))
				return
			}
			s.config = m.cfg // the same settings: nothing to do
			o.Config = &s.config
			return
		}
		m, e := p.mems.add(o.Memory, want)
		if e != nil {
			s.fail(e)
			return
		}
		s.config, s.created, s.applied = m.cfg, &m.cfg, true
		o.Config = &s.config
		p.metrics.memories([]*memory{m}, p.budget.total())
	case wire.OpInfo:
		if m == nil {
			s.fail(wire.Errorf(wire.CodeNotFound, "memory %q does not exist", o.Memory))
			return
		}
		m.mem.Expire(s.ts.UnixNano()) // the size counts no expired item
		p.noteExpired(m)
		st := m.filter.State()
		s.config = m.cfg
		o.Config, o.Size, o.Threshold, o.EMA = &s.config, m.mem.Len(), st.Threshold, st.EMA
	case wire.OpDrop:
		if m == nil {
			return // found: false; nothing changes, so nothing to make durable
		}
		p.mems.drop(o.Memory)
		p.metrics.dropped(o.Memory)
		p.metrics.memories(nil, p.budget.total())
		p.stats.dropped(o.Memory)
		o.Found, s.applied, s.dropped = true, true, true
	}
}

// describe is a memory's settings as an error message quotes them.
func describe(c wire.MemoryConfig) string {
	return fmt.Sprintf("dim %d, capacity %d, eviction %s, filter_threshold %v, filter_adaptive %v, scrub %v",
		c.Dim, c.Capacity, c.Eviction, c.FilterThreshold, c.FilterAdaptive, c.Scrub)
}
