package processor

import (
	"errors"
	"fmt"
)

// Code is the machine-readable class of an error result (PROTOCOL.md, Results).
type Code string

// The error codes a result can carry.
const (
	CodeBadEncoding  Code = "bad_encoding"
	CodeBadRequest   Code = "bad_request"
	CodeBadDimension Code = "bad_dimension"
	CodeBadValue     Code = "bad_value"
	CodeUnknownOp    Code = "unknown_op"
	CodeBadMemory    Code = "bad_memory"
	CodeTooLarge     Code = "too_large"
	CodeInternal     Code = "internal"
)

// Sentinel errors of the package.
var (
	ErrConfig = errors.New("processor: invalid config")
	ErrSetup  = errors.New("processor: jetstream setup failed")
)

// RequestError is why one request was refused. It becomes the result's
// error field and the DLQ copy's Pelm-Error header.
type RequestError struct {
	Code    Code
	Message string
}

func (e *RequestError) Error() string { return string(e.Code) + ": " + e.Message }

func reqErr(code Code, format string, args ...any) *RequestError {
	return &RequestError{Code: code, Message: fmt.Sprintf(format, args...)}
}
