// Package wire is PROTOCOL.md as code: the vocabulary that the processor
// and its clients share, importable by any client without the server.
//
// It holds the ops (Op), the subjects and their rules (ParseSubject,
// ValidMemoryName, ValidSubject, ReplyRules for Pelm-Reply-To), the header
// names, the encodings, the limits, the error codes (Code, Error and one
// Err* value per code for errors.Is), the request as the processor decodes
// it (Request, Decoder for msgpack, DecodeJSON, Request.Validate), the
// result as the processor writes it (Outcome, ResultEncoder) and as a
// client reads it (Result, DecodeResult), and the stats message (Stats).
//
// ReplyRules keeps results off the prefix's own subjects: a Pelm-Reply-To
// may not lie under <prefix>.req, .dlq, .state, .journal or .part (where
// the requests stream files requests by partition), nor be <prefix>.stats.
// ParseSubject takes the prefix a subject is read under, so the processor
// reads a partitioned subject (<prefix>.part.<n>.<memory>.<op>) with it too.
//
// # Untrusted input
//
// Request bodies come from anyone who may publish. Decoder and DecodeJSON
// check every length a message declares against the bytes it still holds
// before they read or allocate anything, bound the nesting of meta values
// to MaxDepth, and return an *Error (never panic) for anything that breaks
// a rule; FuzzDecodeMsgpack and FuzzDecodeJSON hold them to it, with their
// corpora under testdata/fuzz. Results come from the processor: DecodeResult
// uses msgpack's and encoding/json's reflecting decoders.
//
// # Allocation and concurrency
//
// A Decoder, a ResultEncoder and a Request are reused from message to
// message by one goroutine; none is safe for concurrent use. Decoding a
// msgpack request allocates nothing (TestDecodeDoesNotAllocate): vectors go
// straight into the Request's buffer and ID, Text and Meta alias the
// message. Encoding a result allocates nothing of its own but for meta
// values stored in the other encoding, which are converted. The functions
// of the package (subject rules, ParseSubject, ParseOp, EncodingOf) are pure
// and allocate nothing.
//
// # Imports
//
// wire imports msgpack and the standard library only: a client that links
// it and the client package links neither the processor, nor the NATS
// server, nor Prometheus, nor the retrieval kernel.
package wire
