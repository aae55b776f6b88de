package wire

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Result is a result message as a client reads it (DecodeResult). Fields
// that an op does not set are zero; PROTOCOL.md (Results) says which op sets
// which.
type Result struct {
	Op     string `msgpack:"op" json:"op"`
	Memory string `msgpack:"memory" json:"memory"`
	ReqID  string `msgpack:"req_id" json:"req_id"`
	Seq    uint64 `msgpack:"seq" json:"seq"`
	OK     bool   `msgpack:"ok" json:"ok"`
	Error  *Error `msgpack:"error,omitempty" json:"error,omitempty"`

	Accepted  bool    `msgpack:"accepted" json:"accepted"`
	Reason    string  `msgpack:"reason,omitempty" json:"reason,omitempty"`
	Moral     float64 `msgpack:"moral" json:"moral"`
	Threshold float64 `msgpack:"threshold" json:"threshold"`
	ID        string  `msgpack:"id" json:"id"`
	Evicted   string  `msgpack:"evicted,omitempty" json:"evicted,omitempty"`
	Found     bool    `msgpack:"found" json:"found"`
	Matches   []Match `msgpack:"matches" json:"matches"`
	Scrubbed  int     `msgpack:"scrubbed,omitempty" json:"scrubbed,omitempty"`

	Config *MemoryConfig `msgpack:"config,omitempty" json:"config,omitempty"` // create, info
	Size   int           `msgpack:"size,omitempty" json:"size,omitempty"`     // info
	EMA    float64       `msgpack:"ema,omitempty" json:"ema,omitempty"`       // info

	Latency Latency `msgpack:"latency" json:"latency"`
}

// Latency is a result's timing: stream time to batch start, batch start to
// result, stream time to result (microseconds), and the size of the batch
// that carried the request.
type Latency struct {
	QueueUS   int64 `msgpack:"queue_us" json:"queue_us"`
	ProcessUS int64 `msgpack:"process_us" json:"process_us"`
	TotalUS   int64 `msgpack:"total_us" json:"total_us"`
	Batch     int   `msgpack:"batch" json:"batch"`
}

// Meta is a match's meta value as the result carries it: the raw encoded
// value in the result's encoding (msgpack or JSON). Decode reads it into v.
type Meta []byte

// DecodeMsgpack keeps the raw msgpack value.
func (m *Meta) DecodeMsgpack(d *msgpack.Decoder) error {
	raw, err := d.DecodeRaw()
	*m = Meta(raw)
	return err
}

// EncodeMsgpack writes the raw msgpack value.
func (m Meta) EncodeMsgpack(e *msgpack.Encoder) error {
	if len(m) == 0 {
		return e.EncodeNil()
	}
	return e.Encode(msgpack.RawMessage(m))
}

// UnmarshalJSON keeps the raw JSON value.
func (m *Meta) UnmarshalJSON(b []byte) error {
	*m = append((*m)[:0], b...)
	return nil
}

// MarshalJSON writes the raw JSON value.
func (m Meta) MarshalJSON() ([]byte, error) {
	if len(m) == 0 {
		return []byte("null"), nil
	}
	return m, nil
}

// Decode reads the meta value into v, from the encoding enc it arrived in.
func (m Meta) Decode(enc Encoding, v any) error {
	if enc == JSON {
		return json.Unmarshal(m, v)
	}
	return msgpack.Unmarshal(m, v)
}

// DecodeResult reads a result body of the given Content-Type ("" means
// msgpack). Results come from the processor, so this uses the reflecting
// decoders; requests, which come from anyone, never do.
func DecodeResult(body []byte, contentType string) (*Result, error) {
	enc, known := EncodingOf(contentType)
	if !known {
		return nil, fmt.Errorf("wire: result of Content-Type %q", contentType)
	}
	r := &Result{}
	var err error
	if enc == JSON {
		err = json.Unmarshal(body, r)
	} else {
		err = msgpack.NewDecoder(bytes.NewReader(body)).Decode(r)
	}
	if err != nil {
		return nil, fmt.Errorf("wire: decode result: %w", err)
	}
	return r, nil
}

// BodyJSON renders a result or stats body as JSON, whichever its encoding
// (contentType as in the Content-Type header; "" means msgpack). It is for
// tools that show results to people.
func BodyJSON(body []byte, contentType string) ([]byte, error) {
	if contentType == JSON.ContentType() {
		return body, nil
	}
	var v any
	if err := msgpack.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("wire: body is not msgpack: %w", err)
	}
	return json.Marshal(jsonable(v))
}
