package processor

import "github.com/pelm-dev/pelm/pelm"

// outcome is everything a result message says. One outcome per request is
// reused across batches.
type outcome struct {
	opName string
	op     Op
	memory string
	reqID  string
	seq    uint64
	enc    Encoding
	ctype  string // the request's Content-Type, echoed on the result ("" for the default)

	err *RequestError

	decided   bool // store/process ran the filter
	accepted  bool
	reason    string
	moral     float64
	threshold float64

	id         string // store, process, forget
	evicted    string
	hasEvicted bool
	found      bool

	matches     []pelm.Match
	withMatches bool // retrieve, process (even when empty)

	queueUS, processUS, totalUS int64
	batch                       int
}

// contentType is the result's Content-Type: the request's, when it named one
// we speak.
func (o *outcome) contentType() string {
	if o.ctype != "" {
		return o.ctype
	}
	return o.enc.ContentType()
}

func (o *outcome) reset() {
	m := o.matches[:0]
	*o = outcome{matches: m}
}

// Meta values are stored with a one-byte tag that says their encoding, so
// that a match returns them as sent, converted only when the retrieving
// request uses the other encoding.
const (
	metaTagMsgpack = 'm'
	metaTagJSON    = 'j'
)

func metaTag(e Encoding) byte {
	if e == JSON {
		return metaTagJSON
	}
	return metaTagMsgpack
}

// kind is how stats and metrics count a result: ok, error (it
// failed) or rejected (the filter or the confidence turned a store or a
// process away).
func (o *outcome) kind() string {
	switch {
	case o.err != nil:
		return "error"
	case o.decided && !o.accepted:
		return "rejected"
	}
	return "ok"
}
