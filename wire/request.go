package wire

// Request is one decoded request body. A Request is reused from batch to
// batch: byte slices (ID, Text, Meta) alias the message's data and are only
// valid while that message is being handled.
type Request struct {
	Vector []float32 // decoded straight into this buffer, cap = dim

	Phase         float64
	ID            []byte
	Moral         float64
	Text          []byte
	Confidence    float64
	Meta          []byte // raw encoded value, in the request's encoding
	Tolerance     float64
	TopK          int
	MinConfidence float64
	WithVectors   bool
	TTL           float64 // seconds; store, process, create

	// create's settings
	Dim             int
	Capacity        int
	Eviction        []byte // "fifo" or "confidence"
	FilterThreshold float64
	FilterAdaptive  bool
	Scrub           bool

	has Fields
}

// Fields is a set of request fields, one bit each (HasVector and the others).
type Fields uint32

const (
	HasVector Fields = 1 << iota
	HasPhase
	HasID
	HasMoral
	HasText
	HasConfidence
	HasMeta
	HasTolerance
	HasTopK
	HasMinConfidence
	HasWithVectors
	HasDim
	HasCapacity
	HasEviction
	HasFilterThreshold
	HasFilterAdaptive
	HasScrub
	HasTTL
)

// Has reports whether the request set a field (see the has* bits).
func (r *Request) Has(f Fields) bool { return r.has&f != 0 }

func (r *Request) reset() {
	v := r.Vector[:0]
	*r = Request{Vector: v}
}

type fieldKey uint8

const (
	fUnknown fieldKey = iota
	fVector
	fPhase
	fID
	fMoral
	fText
	fConfidence
	fMeta
	fTolerance
	fTopK
	fMinConfidence
	fWithVectors
	fDim
	fCapacity
	fEviction
	fFilterThreshold
	fFilterAdaptive
	fScrub
	fTTL
)

// lookupField maps a key to a field; the switch on string(b) does not allocate.
func lookupField(b []byte) fieldKey {
	switch string(b) {
	case "vector":
		return fVector
	case "phase":
		return fPhase
	case "id":
		return fID
	case "moral":
		return fMoral
	case "text":
		return fText
	case "confidence":
		return fConfidence
	case "meta":
		return fMeta
	case "tolerance":
		return fTolerance
	case "top_k":
		return fTopK
	case "min_confidence":
		return fMinConfidence
	case "with_vectors":
		return fWithVectors
	case "dim":
		return fDim
	case "capacity":
		return fCapacity
	case "eviction":
		return fEviction
	case "filter_threshold":
		return fFilterThreshold
	case "filter_adaptive":
		return fFilterAdaptive
	case "scrub":
		return fScrub
	case "ttl":
		return fTTL
	}
	return fUnknown
}

var fieldNames = [...]string{"?", "vector", "phase", "id", "moral", "text", "confidence", "meta", "tolerance", "top_k", "min_confidence",
	"with_vectors", "dim", "capacity", "eviction", "filter_threshold", "filter_adaptive", "scrub", "ttl"}

func (f fieldKey) String() string { return fieldNames[f] }

// number fields and where they go.
func (r *Request) setNumber(f fieldKey, v float64) *Error {
	switch f {
	case fPhase:
		r.Phase, r.has = v, r.has|HasPhase
	case fMoral:
		r.Moral, r.has = v, r.has|HasMoral
	case fConfidence:
		r.Confidence, r.has = v, r.has|HasConfidence
	case fTolerance:
		r.Tolerance, r.has = v, r.has|HasTolerance
	case fMinConfidence:
		r.MinConfidence, r.has = v, r.has|HasMinConfidence
	case fTopK:
		if v != float64(int64(v)) {
			return Errorf(CodeBadValue, "top_k: %v is not an integer", v)
		}
		if v < 1 || v > MaxTopK {
			return Errorf(CodeBadValue, "top_k: %v is outside [1, %d]", v, MaxTopK)
		}
		r.TopK, r.has = int(v), r.has|HasTopK
	case fDim:
		if v != float64(int64(v)) || v < 1 || v > MaxDim {
			return Errorf(CodeBadValue, "dim: %v is not an integer in [1, %d]", v, MaxDim)
		}
		r.Dim, r.has = int(v), r.has|HasDim
	case fCapacity:
		if v != float64(int64(v)) || v < 1 || v > MaxCapacity {
			return Errorf(CodeBadValue, "capacity: %v is not an integer in [1, %d]", v, MaxCapacity)
		}
		r.Capacity, r.has = int(v), r.has|HasCapacity
	case fFilterThreshold:
		r.FilterThreshold, r.has = v, r.has|HasFilterThreshold
	case fTTL:
		// Written so that NaN fails too.
		if !(v >= 0 && v <= MaxTTL) {
			return Errorf(CodeBadValue, "ttl: %v is not a number of seconds in [0, %d] (100 years)", v, int64(MaxTTL))
		}
		r.TTL, r.has = v, r.has|HasTTL
	}
	return nil
}

// setBool sets a bool field.
func (r *Request) setBool(f fieldKey, v bool) {
	switch f {
	case fWithVectors:
		r.WithVectors, r.has = v, r.has|HasWithVectors
	case fFilterAdaptive:
		r.FilterAdaptive, r.has = v, r.has|HasFilterAdaptive
	case fScrub:
		r.Scrub, r.has = v, r.has|HasScrub
	}
}

func isBoolField(f fieldKey) bool { return f == fWithVectors || f == fFilterAdaptive || f == fScrub }

// setString sets a string field to a view of the message.
func (r *Request) setString(f fieldKey, s []byte) {
	switch f {
	case fID:
		r.ID, r.has = s, r.has|HasID
	case fText:
		r.Text, r.has = s, r.has|HasText
	case fEviction:
		r.Eviction, r.has = s, r.has|HasEviction
	}
}

func isStringField(f fieldKey) bool { return f == fID || f == fText || f == fEviction }

func isNumberField(f fieldKey) bool {
	switch f {
	case fPhase, fMoral, fConfidence, fTolerance, fMinConfidence, fTopK, fDim, fCapacity, fFilterThreshold, fTTL:
		return true
	}
	return false
}
