package processor

// Op is a request's operation, the last token of its subject.
type Op uint8

// The operations of PROTOCOL.md.
const (
	OpInvalid Op = iota
	OpStore
	OpRetrieve
	OpProcess
	OpForget
)

var opNames = [...]string{"_invalid", "store", "retrieve", "process", "forget"}

func (o Op) String() string { return opNames[o] }

func parseOp(s string) Op {
	switch s {
	case "store":
		return OpStore
	case "retrieve":
		return OpRetrieve
	case "process":
		return OpProcess
	case "forget":
		return OpForget
	}
	return OpInvalid
}

// Limits on request fields (PROTOCOL.md, Requests).
const (
	maxIDLen   = 256
	maxTextLen = 64 << 10
	maxMetaLen = 4 << 10
	maxTopK    = 1000
	maxDepth   = 32 // nesting allowed inside meta; deeper is refused before recursing
)

// Encoding is the body encoding of a request and of its result.
type Encoding uint8

// The two encodings; msgpack is the default.
const (
	Msgpack Encoding = iota
	JSON
)

// ContentType is the Content-Type header value of the encoding.
func (e Encoding) ContentType() string {
	if e == JSON {
		return "application/json"
	}
	return "application/msgpack"
}

// encodingOf maps a Content-Type header to an encoding; known is false for
// a type we do not speak (the result then uses msgpack).
func encodingOf(contentType string) (enc Encoding, known bool) {
	switch contentType {
	case "", "application/msgpack", "application/x-msgpack":
		return Msgpack, true
	case "application/json":
		return JSON, true
	}
	return Msgpack, false
}

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

	has fieldSet
}

type fieldSet uint16

const (
	hasVector fieldSet = 1 << iota
	hasPhase
	hasID
	hasMoral
	hasText
	hasConfidence
	hasMeta
	hasTolerance
	hasTopK
	hasMinConfidence
	hasWithVectors
)

// Has reports whether the request set a field (see the has* bits).
func (r *Request) Has(f fieldSet) bool { return r.has&f != 0 }

func (r *Request) reset() {
	v := r.Vector[:0]
	*r = Request{Vector: v}
}

type field uint8

const (
	fUnknown field = iota
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
)

// lookupField maps a key to a field; the switch on string(b) does not allocate.
func lookupField(b []byte) field {
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
	}
	return fUnknown
}

var fieldNames = [...]string{"?", "vector", "phase", "id", "moral", "text", "confidence", "meta", "tolerance", "top_k", "min_confidence", "with_vectors"}

func (f field) String() string { return fieldNames[f] }

// number fields and where they go.
func (r *Request) setNumber(f field, v float64) *RequestError {
	switch f {
	case fPhase:
		r.Phase, r.has = v, r.has|hasPhase
	case fMoral:
		r.Moral, r.has = v, r.has|hasMoral
	case fConfidence:
		r.Confidence, r.has = v, r.has|hasConfidence
	case fTolerance:
		r.Tolerance, r.has = v, r.has|hasTolerance
	case fMinConfidence:
		r.MinConfidence, r.has = v, r.has|hasMinConfidence
	case fTopK:
		if v != float64(int64(v)) {
			return reqErr(CodeBadValue, "top_k: %v is not an integer", v)
		}
		if v < 1 || v > maxTopK {
			return reqErr(CodeBadValue, "top_k: %v is outside [1, %d]", v, maxTopK)
		}
		r.TopK, r.has = int(v), r.has|hasTopK
	}
	return nil
}

func isNumberField(f field) bool {
	switch f {
	case fPhase, fMoral, fConfidence, fTolerance, fMinConfidence, fTopK:
		return true
	}
	return false
}
