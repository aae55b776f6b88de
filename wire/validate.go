package wire

import "math"

// Defaults applied to requests that leave an optional field out.
type Defaults struct {
	Tolerance float64
	TopK      int
}

// validate checks the decoded fields against op's rules and fills defaults.
// Type and dimension errors were already found while decoding.
func (r *Request) Validate(op Op, d Defaults) *Error {
	needVector := op == OpStore || op == OpRetrieve || op == OpProcess
	if needVector {
		if !r.Has(HasVector) {
			return Errorf(CodeBadRequest, "vector: required for %s", op)
		}
		if allZero(r.Vector) {
			return Errorf(CodeBadValue, "vector: all zero, its direction is undefined")
		}
		if !r.Has(HasPhase) {
			return Errorf(CodeBadRequest, "phase: required for %s", op)
		}
		if e := unitRange("phase", r.Phase); e != nil {
			return e
		}
	}
	if op == OpCreate {
		if e := r.validateCreate(); e != nil {
			return e
		}
	}
	if op == OpForget && !r.Has(HasID) {
		return Errorf(CodeBadRequest, "id: required for forget")
	}
	if r.Has(HasID) && (len(r.ID) == 0 || len(r.ID) > MaxIDLen) {
		return Errorf(CodeBadValue, "id: %d bytes, want 1 to %d", len(r.ID), MaxIDLen)
	}
	if r.Has(HasText) && len(r.Text) > MaxTextLen {
		return Errorf(CodeTooLarge, "text: %d bytes, at most %d", len(r.Text), MaxTextLen)
	}
	if r.Has(HasMeta) && len(r.Meta) > MaxMetaLen {
		return Errorf(CodeTooLarge, "meta: %d bytes encoded, at most %d", len(r.Meta), MaxMetaLen)
	}
	for _, c := range [...]struct {
		bit  Fields
		name string
		v    float64
	}{
		{HasMoral, "moral", r.Moral},
		{HasConfidence, "confidence", r.Confidence},
		{HasTolerance, "tolerance", r.Tolerance},
		{HasMinConfidence, "min_confidence", r.MinConfidence},
	} {
		if r.Has(c.bit) {
			if e := unitRange(c.name, c.v); e != nil {
				return e
			}
		}
	}
	if !r.Has(HasConfidence) {
		r.Confidence = 1
	}
	if !r.Has(HasTolerance) {
		r.Tolerance = d.Tolerance
	}
	if !r.Has(HasTopK) {
		r.TopK = d.TopK
	}
	return nil
}

func unitRange(name string, v float64) *Error {
	if math.IsNaN(v) || v < 0 || v > 1 {
		return Errorf(CodeBadValue, "%s: %v is outside [0, 1]", name, v)
	}
	return nil
}

func allZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// checkFloat32 converts a decoded number to a vector element.
func checkFloat32(i int, v float64) (float32, *Error) {
	f := float32(v)
	if math.IsNaN(v) || math.IsInf(float64(f), 0) {
		return 0, Errorf(CodeBadValue, "vector[%d]: %v is not a finite float32", i, v)
	}
	return f, nil
}

// Filter thresholds a memory may start at (PROTOCOL.md, Filter).
const (
	MinFilterThreshold = 0.30
	MaxFilterThreshold = 0.90
)

// validateCreate checks the settings of a create; dim and capacity were
// checked as they were decoded.
func (r *Request) validateCreate() *Error {
	if r.Has(HasEviction) && string(r.Eviction) != "fifo" && string(r.Eviction) != "confidence" {
		return Errorf(CodeBadValue, "eviction: %q, want fifo or confidence", Clip(string(r.Eviction)))
	}
	if r.Has(HasFilterThreshold) && !(r.FilterThreshold >= MinFilterThreshold && r.FilterThreshold <= MaxFilterThreshold) {
		return Errorf(CodeBadValue, "filter_threshold: %v is outside [%v, %v]", r.FilterThreshold, MinFilterThreshold, MaxFilterThreshold)
	}
	return nil
}
