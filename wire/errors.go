package wire

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
	CodeExists       Code = "exists"
	CodeNotFound     Code = "not_found"
	CodeOverBudget   Code = "over_budget"
	CodeInternal     Code = "internal"
)

// Error is why one request was refused: a result's error field, and the
// reason a dead letter carries in its Pelm-Error header.
type Error struct {
	Code    Code   `msgpack:"code" json:"code"`
	Message string `msgpack:"message" json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Is reports whether target is an *Error of the same code, so that
// errors.Is(err, wire.ErrBadDimension) tells a result's error by its code
// whatever its message.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errorf returns an error of the given code with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// One error of each code, to compare with errors.Is.
var (
	ErrBadEncoding  = &Error{Code: CodeBadEncoding}
	ErrBadRequest   = &Error{Code: CodeBadRequest}
	ErrBadDimension = &Error{Code: CodeBadDimension}
	ErrBadValue     = &Error{Code: CodeBadValue}
	ErrUnknownOp    = &Error{Code: CodeUnknownOp}
	ErrBadMemory    = &Error{Code: CodeBadMemory}
	ErrTooLarge     = &Error{Code: CodeTooLarge}
	ErrExists       = &Error{Code: CodeExists}
	ErrNotFound     = &Error{Code: CodeNotFound}
	ErrOverBudget   = &Error{Code: CodeOverBudget}
	ErrInternal     = &Error{Code: CodeInternal}
)

// ErrPattern reports a --reply-allow pattern that is not a subject.
var ErrPattern = errors.New("wire: not a valid subject pattern")
