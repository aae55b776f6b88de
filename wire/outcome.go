package wire

// Outcome is everything a result message says, as the processor fills it
// and ResultEncoder writes it. An Outcome is reused from batch to batch.
type Outcome struct {
	OpName string // the op token of the subject, or InvalidName
	Op     Op
	Memory string // the memory name of the subject, or InvalidName
	ReqID  string // the request's Nats-Msg-Id, or ""
	Seq    uint64 // the request's stream sequence
	Enc    Encoding
	CType  string // the request's Content-Type, echoed on the result ("" for the default)

	Err *Error // the request was refused

	Decided   bool // store/process ran the filter
	Accepted  bool
	Reason    string // "moral" or "low_confidence" when not accepted
	Moral     float64
	Threshold float64

	ID         string // store, process, forget
	Evicted    string
	HasEvicted bool
	Found      bool

	// Matches of a retrieve or process. Their Meta holds the stored meta
	// value behind its one-byte encoding tag (MetaTag), which the encoder
	// converts to the result's encoding.
	Matches     []Match
	WithMatches bool // retrieve, process (even when empty)

	Config   *MemoryConfig // create, info: the memory's settings
	Size     int           // info: live items
	EMA      float64       // info: the filter's ema (Threshold holds its threshold)
	Scrubbed int           // store, process of a scrubbing memory: personal data replaced
	Scrubs   bool          // the memory scrubs: the result says how many were replaced

	QueueUS, ProcessUS, TotalUS int64
	Batch                       int
}

// Match is one item a retrieve found.
type Match struct {
	ID         string    `msgpack:"id" json:"id"`
	Score      float32   `msgpack:"score" json:"score"` // cosine similarity in [-1, 1]
	Phase      float64   `msgpack:"phase" json:"phase"`
	Confidence float64   `msgpack:"confidence" json:"confidence"`
	Meta       Meta      `msgpack:"meta" json:"meta"`
	Vector     []float32 `msgpack:"vector,omitempty" json:"vector,omitempty"` // with_vectors only: the stored unit vector
}

// ContentType is the result's Content-Type: the request's, when it named
// one we speak.
func (o *Outcome) ContentType() string {
	if o.CType != "" {
		return o.CType
	}
	return o.Enc.ContentType()
}

// Reset clears o for the next request, keeping its matches' array.
func (o *Outcome) Reset() {
	m := o.Matches[:0]
	*o = Outcome{Matches: m}
}

// Meta values are stored with a one-byte tag that says their encoding, so
// that a match returns them as sent, converted only when the retrieving
// request uses the other encoding.
const (
	MetaTagMsgpack = 'm'
	MetaTagJSON    = 'j'
)

// MetaTag is the tag of a meta value sent in encoding e.
func MetaTag(e Encoding) byte {
	if e == JSON {
		return MetaTagJSON
	}
	return MetaTagMsgpack
}

// Kind is how stats and metrics count a result: ok, error (it failed) or
// rejected (the filter or the confidence turned a store or a process away).
func (o *Outcome) Kind() string {
	switch {
	case o.Err != nil:
		return "error"
	case o.Decided && !o.Accepted:
		return "rejected"
	}
	return "ok"
}
