package wire

// MemoryConfig is a memory's settings (PROTOCOL.md, Memories): what create
// sets, and what create and info return as config.
type MemoryConfig struct {
	Dim             int     `msgpack:"dim" json:"dim"`
	Capacity        int     `msgpack:"capacity" json:"capacity"`
	Eviction        string  `msgpack:"eviction" json:"eviction"` // fifo or confidence
	FilterThreshold float64 `msgpack:"filter_threshold" json:"filter_threshold"`
	FilterAdaptive  bool    `msgpack:"filter_adaptive" json:"filter_adaptive"`
	Scrub           bool    `msgpack:"scrub" json:"scrub"`
	TTL             float64 `msgpack:"ttl" json:"ttl"` // seconds an item lives when its store gives no ttl; 0: forever
}

// Settings returns the settings a create asks for: each field it gave, and
// for the others those of defaults (the server's flags).
func (r *Request) Settings(defaults MemoryConfig) MemoryConfig {
	c := defaults
	if r.Has(HasDim) {
		c.Dim = r.Dim
	}
	if r.Has(HasCapacity) {
		c.Capacity = r.Capacity
	}
	if r.Has(HasEviction) {
		c.Eviction = string(r.Eviction)
	}
	if r.Has(HasFilterThreshold) {
		c.FilterThreshold = r.FilterThreshold
	}
	if r.Has(HasFilterAdaptive) {
		c.FilterAdaptive = r.FilterAdaptive
	}
	if r.Has(HasScrub) {
		c.Scrub = r.Scrub
	}
	if r.Has(HasTTL) {
		c.TTL = r.TTL
	}
	return c
}
