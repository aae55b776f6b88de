package processor

import "math"

// Defaults applied to requests that leave an optional field out.
type Defaults struct {
	Tolerance float64
	TopK      int
}

// validate checks the decoded fields against op's rules and fills defaults.
// Type and dimension errors were already found while decoding.
func (r *Request) validate(op Op, d Defaults) *RequestError {
	needVector := op == OpStore || op == OpRetrieve || op == OpProcess
	if needVector {
		if !r.Has(hasVector) {
			return reqErr(CodeBadRequest, "vector: required for %s", op)
		}
		if allZero(r.Vector) {
			return reqErr(CodeBadValue, "vector: all zero, its direction is undefined")
		}
		if !r.Has(hasPhase) {
			return reqErr(CodeBadRequest, "phase: required for %s", op)
		}
		if e := unitRange("phase", r.Phase); e != nil {
			return e
		}
	}
	if op == OpForget && !r.Has(hasID) {
		return reqErr(CodeBadRequest, "id: required for forget")
	}
	if r.Has(hasID) && (len(r.ID) == 0 || len(r.ID) > maxIDLen) {
		return reqErr(CodeBadValue, "id: %d bytes, want 1 to %d", len(r.ID), maxIDLen)
	}
	if r.Has(hasText) && len(r.Text) > maxTextLen {
		return reqErr(CodeTooLarge, "text: %d bytes, at most %d", len(r.Text), maxTextLen)
	}
	if r.Has(hasMeta) && len(r.Meta) > maxMetaLen {
		return reqErr(CodeTooLarge, "meta: %d bytes encoded, at most %d", len(r.Meta), maxMetaLen)
	}
	for _, c := range [...]struct {
		bit  fieldSet
		name string
		v    float64
	}{
		{hasMoral, "moral", r.Moral},
		{hasConfidence, "confidence", r.Confidence},
		{hasTolerance, "tolerance", r.Tolerance},
		{hasMinConfidence, "min_confidence", r.MinConfidence},
	} {
		if r.Has(c.bit) {
			if e := unitRange(c.name, c.v); e != nil {
				return e
			}
		}
	}
	if !r.Has(hasConfidence) {
		r.Confidence = 1
	}
	if !r.Has(hasTolerance) {
		r.Tolerance = d.Tolerance
	}
	if !r.Has(hasTopK) {
		r.TopK = d.TopK
	}
	return nil
}

func unitRange(name string, v float64) *RequestError {
	if math.IsNaN(v) || v < 0 || v > 1 {
		return reqErr(CodeBadValue, "%s: %v is outside [0, 1]", name, v)
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
func checkFloat32(i int, v float64) (float32, *RequestError) {
	f := float32(v)
	if math.IsNaN(v) || math.IsInf(float64(f), 0) {
		return 0, reqErr(CodeBadValue, "vector[%d]: %v is not a finite float32", i, v)
	}
	return f, nil
}
