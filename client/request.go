package client

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/pelm-dev/pelm/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// Request is one of StoreRequest, RetrieveRequest, ProcessRequest and
// ForgetRequest.
type Request interface {
	// Op is the request's op, the last token of its subject.
	Op() wire.Op
	// fields lists what the request sets, by protocol field name; vector
	// fields are []float32.
	fields() map[string]any
}

// StoreRequest stores an item (PROTOCOL.md, store). Optional fields left
// at their zero value are not sent, so the server applies its default.
type StoreRequest struct {
	ID         string    `json:"id,omitempty"` // "" lets the server use the request's stream sequence
	Vector     []float32 `json:"vector"`
	Phase      float64   `json:"phase"`
	Moral      *float64  `json:"moral,omitempty"`      // nil: scored from Text, or 0.8 without one
	Text       string    `json:"text,omitempty"`       // scored when Moral is nil
	Confidence *float64  `json:"confidence,omitempty"` // nil: 1.0
	Meta       any       `json:"meta,omitempty"`       // any value the encoding takes; returned with matches
	TTL        *float64  `json:"ttl,omitempty"`        // seconds the item lives, by stream time; 0: forever; nil: the memory's ttl
}

// RetrieveRequest asks for the items closest to Vector (PROTOCOL.md,
// retrieve).
type RetrieveRequest struct {
	Vector        []float32 `json:"vector"`
	Phase         float64   `json:"phase"`
	Tolerance     *float64  `json:"tolerance,omitempty"` // nil: the server's --tolerance
	TopK          int       `json:"top_k,omitempty"`     // 0: the server's --top-k
	MinConfidence float64   `json:"min_confidence,omitempty"`
	WithVectors   bool      `json:"with_vectors,omitempty"`
}

// ProcessRequest is the governed event (PROTOCOL.md, process): filter,
// retrieve the context, then store.
type ProcessRequest struct {
	ID            string    `json:"id,omitempty"`
	Vector        []float32 `json:"vector"`
	Phase         float64   `json:"phase"`
	Moral         *float64  `json:"moral,omitempty"`
	Text          string    `json:"text,omitempty"`
	Confidence    *float64  `json:"confidence,omitempty"`
	Meta          any       `json:"meta,omitempty"`
	TTL           *float64  `json:"ttl,omitempty"`
	Tolerance     *float64  `json:"tolerance,omitempty"`
	TopK          int       `json:"top_k,omitempty"`
	MinConfidence float64   `json:"min_confidence,omitempty"`
	WithVectors   bool      `json:"with_vectors,omitempty"`
}

// ForgetRequest removes an item (PROTOCOL.md, forget).
type ForgetRequest struct {
	ID string `json:"id"`
}

// CreateRequest creates a memory with its own settings (PROTOCOL.md,
// Memories); a field left at its zero value takes the server's default.
// Creating a memory that exists with the same settings is ok; with other
// settings it is the error wire.ErrExists.
type CreateRequest struct {
	Dim             int      `json:"dim,omitempty"`
	Capacity        int      `json:"capacity,omitempty"`
	Eviction        string   `json:"eviction,omitempty"` // fifo or confidence
	FilterThreshold *float64 `json:"filter_threshold,omitempty"`
	FilterAdaptive  *bool    `json:"filter_adaptive,omitempty"`
	Scrub           bool     `json:"scrub,omitempty"` // replace personal data in text and meta
	TTL             float64  `json:"ttl,omitempty"`   // seconds an item lives when its store gives none; 0: forever
}

// InfoRequest asks for a memory's settings, size and filter state; a
// memory that does not exist is the error wire.ErrNotFound.
type InfoRequest struct{}

// DropRequest deletes a memory, its items and its filter, durably; Found
// says whether it existed.
type DropRequest struct{}

// Float returns a pointer to f, for the optional fields.
func Float(f float64) *float64 { return &f }

// Op is wire.OpStore.
func (StoreRequest) Op() wire.Op { return wire.OpStore }

// Op is wire.OpRetrieve.
func (RetrieveRequest) Op() wire.Op { return wire.OpRetrieve }

// Op is wire.OpProcess.
func (ProcessRequest) Op() wire.Op { return wire.OpProcess }

// Op is wire.OpForget.
func (ForgetRequest) Op() wire.Op { return wire.OpForget }

// Op is wire.OpCreate.
func (CreateRequest) Op() wire.Op { return wire.OpCreate }

// Op is wire.OpInfo.
func (InfoRequest) Op() wire.Op { return wire.OpInfo }

// Op is wire.OpDrop.
func (DropRequest) Op() wire.Op { return wire.OpDrop }

// Bool returns a pointer to b, for the optional fields.
func Bool(b bool) *bool { return &b }

func (r StoreRequest) fields() map[string]any {
	f := map[string]any{"vector": r.Vector, "phase": r.Phase}
	putItem(f, r.ID, r.Moral, r.Text, r.Confidence, r.Meta, r.TTL)
	return f
}

func (r RetrieveRequest) fields() map[string]any {
	f := map[string]any{"vector": r.Vector, "phase": r.Phase}
	putQuery(f, r.Tolerance, r.TopK, r.MinConfidence, r.WithVectors)
	return f
}

func (r ProcessRequest) fields() map[string]any {
	f := map[string]any{"vector": r.Vector, "phase": r.Phase}
	putItem(f, r.ID, r.Moral, r.Text, r.Confidence, r.Meta, r.TTL)
	putQuery(f, r.Tolerance, r.TopK, r.MinConfidence, r.WithVectors)
	return f
}

func (r ForgetRequest) fields() map[string]any { return map[string]any{"id": r.ID} }

func (r CreateRequest) fields() map[string]any {
	f := map[string]any{}
	if r.Dim != 0 {
		f["dim"] = r.Dim
	}
	if r.Capacity != 0 {
		f["capacity"] = r.Capacity
	}
	if r.Eviction != "" {
		f["eviction"] = r.Eviction
	}
	if r.FilterThreshold != nil {
		f["filter_threshold"] = *r.FilterThreshold
	}
	if r.FilterAdaptive != nil {
		f["filter_adaptive"] = *r.FilterAdaptive
	}
	if r.Scrub {
		f["scrub"] = true
	}
	if r.TTL != 0 {
		f["ttl"] = r.TTL
	}
	return f
}

func (InfoRequest) fields() map[string]any { return map[string]any{} }

func (DropRequest) fields() map[string]any { return map[string]any{} }

func putItem(f map[string]any, id string, moral *float64, text string, conf *float64, meta any, ttl *float64) {
	if ttl != nil {
		f["ttl"] = *ttl
	}
	if id != "" {
		f["id"] = id
	}
	if moral != nil {
		f["moral"] = *moral
	}
	if text != "" {
		f["text"] = text
	}
	if conf != nil {
		f["confidence"] = *conf
	}
	if meta != nil {
		f["meta"] = meta
	}
}

func putQuery(f map[string]any, tol *float64, topK int, minConf float64, withVectors bool) {
	if tol != nil {
		f["tolerance"] = *tol
	}
	if topK != 0 {
		f["top_k"] = topK
	}
	if minConf != 0 {
		f["min_confidence"] = minConf
	}
	if withVectors {
		f["with_vectors"] = true
	}
}

// Encode returns the body of r in encoding enc: a msgpack map whose vector
// is a bin of little-endian float32 (the compact form PROTOCOL.md allows),
// or a JSON object.
func Encode(r Request, enc wire.Encoding) ([]byte, error) {
	f := r.fields()
	if enc == wire.JSON {
		b, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("client: encode %s: %w", r.Op(), err)
		}
		return b, nil
	}
	if v, ok := f["vector"].([]float32); ok {
		f["vector"] = vectorBin(v)
	}
	b, err := msgpack.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("client: encode %s: %w", r.Op(), err)
	}
	return b, nil
}

// vectorBin is v as little-endian float32 bytes.
func vectorBin(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}
