package processor

import (
	"fmt"
	"strconv"

	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/pelm"
	"github.com/pelm-dev/pelm/scrub"
	"github.com/pelm-dev/pelm/wire"
)

// plan runs the filter for a memory's requests in stream order and turns
// them into memory operations.
func (p *partition) plan(m *memory) {
	m.ops = m.ops[:0]
	for _, i := range m.reqs {
		s := &p.slots[i]
		r, o := &s.req, &s.out
		if p.cfg.Hook != nil && r.Has(wire.HasID) {
			p.cfg.Hook(HookRequest + string(r.ID))
		}
		switch o.Op {
		case wire.OpStore, wire.OpProcess:
			text := r.Text
			if m.cfg.Scrub && r.Has(wire.HasText) {
				// Personal data is replaced before the text is scored.
				var n int
				s.scrubbed, n = scrub.Append(s.scrubbed[:0], r.Text)
				text, o.Scrubbed = s.scrubbed, o.Scrubbed+n
			}
			o.Scrubs = m.cfg.Scrub
			moral := filter.DefaultMoral
			switch {
			case r.Has(wire.HasMoral):
				moral = r.Moral
			case r.Has(wire.HasText):
				moral = filter.Score(string(text))
			}
			accepted, threshold := m.filter.Decide(moral)
			o.Decided, o.Moral, o.Threshold = true, moral, threshold
			s.filterAfter = m.filter.State()
			s.applied = true
			if r.Has(wire.HasID) {
				o.ID = string(r.ID)
			} else {
				o.ID = strconv.FormatUint(o.Seq, 10)
			}
			o.WithMatches = o.Op == wire.OpProcess
			switch {
			case !accepted:
				o.Reason = "moral"
			case r.Confidence < 0.5:
				o.Reason = "low_confidence"
			default:
				o.Accepted = true
			}
			if !o.Accepted {
				continue
			}
			now := s.ts.UnixNano()
			if o.Op == wire.OpProcess {
				s.retrieveOp = len(m.ops)
				m.ops = append(m.ops, retrieveOp(r, now))
			}
			s.meta = s.meta[:0]
			if r.Has(wire.HasMeta) {
				s.meta = append(s.meta, wire.MetaTag(o.Enc))
				if m.cfg.Scrub {
					// Every string of the meta value, before it is stored,
					// persisted or returned.
					n := 0
					if s.meta, n = scrubMeta(s.meta, r.Meta, o.Enc); n < 0 {
						s.meta = append(s.meta[:1], r.Meta...) // the decoder checked it: unreachable
						n = 0
					}
					o.Scrubbed += n
				} else {
					s.meta = append(s.meta, r.Meta...)
				}
			}
			ttl := m.cfg.TTL
			if r.Has(wire.HasTTL) {
				ttl = r.TTL
			}
			s.expires = 0
			if ttl > 0 {
				s.expires = now + int64(ttl*1e9)
			}
			s.storeOp = len(m.ops)
			m.ops = append(m.ops, pelm.Op{Kind: pelm.OpStore, ID: o.ID, Vector: r.Vector, Phase: r.Phase, Confidence: r.Confidence, Meta: s.meta,
				Time: now, Expires: s.expires})
		case wire.OpRetrieve:
			o.WithMatches = true
			s.retrieveOp = len(m.ops)
			m.ops = append(m.ops, retrieveOp(r, s.ts.UnixNano()))
		case wire.OpForget:
			s.applied = true
			o.ID = string(r.ID)
			s.forgetOp = len(m.ops)
			m.ops = append(m.ops, pelm.Op{Kind: pelm.OpForget, ID: o.ID, Time: s.ts.UnixNano()})
		}
	}
}

func retrieveOp(r *wire.Request, now int64) pelm.Op {
	return pelm.Op{Kind: pelm.OpRetrieve, Vector: r.Vector, Phase: r.Phase, Tolerance: r.Tolerance,
		TopK: r.TopK, MinConfidence: r.MinConfidence, WithVectors: r.WithVectors, Time: now}
}

// execute applies a memory's planned operations and copies their results
// into the outcomes.
func (p *partition) execute(m *memory) {
	if len(m.ops) == 0 {
		return
	}
	if cap(m.results) < len(m.ops) {
		m.results = append(m.results[:cap(m.results)], make([]pelm.Result, len(m.ops)-cap(m.results))...)
	}
	m.results = m.results[:len(m.ops)]
	if err := m.apply(); err != nil {
		// Validation should make this unreachable; if it is reached, the
		// memory is unchanged (pelm checks before it changes anything) and
		// the requests go to the DLQ instead of taking the service down.
		p.log.Error().Err(err).Str("memory", m.name).Msg("memory refused a batch")
		for _, i := range m.reqs {
			p.slots[i].fail(wire.Errorf(wire.CodeInternal, "memory %q: %v", m.name, err))
			p.slots[i].applied = false
		}
		p.stale = true // the filter decided already: reload it from what is durable
		return
	}
	p.noteExpired(m)
	for _, i := range m.reqs {
		s := &p.slots[i]
		o := &s.out
		if s.retrieveOp >= 0 {
			o.Matches = appendMatches(o.Matches[:0], m.results[s.retrieveOp].Matches)
		}
		if s.storeOp >= 0 {
			res := &m.results[s.storeOp]
			o.Evicted, o.HasEvicted = res.Evicted, res.HasEvicted
		}
		if s.forgetOp >= 0 {
			o.Found = m.results[s.forgetOp].Found
		}
	}
}

// apply runs the planned ops, turning a panic (a broken precondition) into
// an error.
func (m *memory) apply() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	m.mem.Apply(m.ops, m.results)
	return nil
}

// appendMatches copies a retrieve's matches for the result encoder. Their
// strings, metas and vectors are not copied: they stay valid until the
// memory's next Apply, after the batch's results are encoded.
func appendMatches(dst []wire.Match, ms []pelm.Match) []wire.Match {
	for i := range ms {
		m := &ms[i]
		dst = append(dst, wire.Match{ID: m.ID, Score: m.Score, Phase: m.Phase, Confidence: m.Confidence, Meta: m.Meta, Vector: m.Vector})
	}
	return dst
}

// scrubMeta appends meta, in encoding enc, with personal data replaced in
// every string, and how many were replaced; -1 when meta does not parse.
func scrubMeta(dst, meta []byte, enc wire.Encoding) ([]byte, int) {
	var n int
	var err error
	if enc == wire.JSON {
		dst, n, err = scrub.JSON(dst, meta)
	} else {
		dst, n, err = scrub.Msgpack(dst, meta)
	}
	if err != nil {
		return dst, -1
	}
	return dst, n
}

// expiredItem is an item that expired in the batch, to be dropped from the
// durable state once the batch's journal record is stored.
type expiredItem struct {
	mem *memory
	id  string // the memory's own string: valid forever
}

// noteExpired keeps what the memory's last Apply or Expire expired.
func (p *partition) noteExpired(m *memory) {
	for _, id := range m.mem.Expired() {
		p.expired = append(p.expired, expiredItem{mem: m, id: id})
	}
}

// dropExpired hands the batch's expired items to the durable state, but
// those stored again later in the batch: their removal is already behind
// them there, and a removal now would delete the new version.
func (p *partition) dropExpired() {
	for _, e := range p.expired {
		if p.mems.byName[e.mem.name] != e.mem {
			continue // dropped meanwhile
		}
		if _, live := e.mem.mem.Get(e.id); !live {
			p.expiredIDs = append(p.expiredIDs[:0], e.id)
			p.store.Expired(e.mem.name, p.expiredIDs)
		}
	}
	p.expired = p.expired[:0]
}
