package wire

// Names and defaults of PROTOCOL.md.
const (
	DefaultPrefix  = "pelm"          // the subject prefix
	RequestsStream = "PELM_REQUESTS" // captures <prefix>.req.>
	DLQStream      = "PELM_DLQ"      // captures <prefix>.dlq.>
)

// Limits on request fields (PROTOCOL.md, Requests).
const (
	MaxDim      = 4096      // a memory's dimension, at most
	MaxCapacity = 1_000_000 // a memory's capacity, at most

	MaxIDLen   = 256
	MaxTextLen = 64 << 10
	MaxMetaLen = 4 << 10
	MaxTopK    = 1000
	MaxDepth   = 32                       // nesting allowed inside meta; deeper is refused before recursing
	MaxTTL     = 100 * 365.25 * 24 * 3600 // seconds: a ttl longer than 100 years is refused
)
