package wire

// Header names of PROTOCOL.md.
const (
	HeaderMsgID       = "Nats-Msg-Id"     // a request's id (JetStream's duplicate window)
	HeaderReplyTo     = "Pelm-Reply-To"   // where a request's result goes
	HeaderContentType = "Content-Type"    // application/msgpack (default) or application/json
	HeaderRequestID   = "Pelm-Request-Id" // on a result or dead letter: the request's Nats-Msg-Id
	HeaderSeq         = "Pelm-Seq"        // on a result or dead letter: the request's stream sequence
	HeaderError       = "Pelm-Error"      // on a dead letter: "<code>: <message>"
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

// EncodingOf maps a Content-Type header to an encoding; known is false for
// a type we do not speak (the result then uses msgpack).
func EncodingOf(contentType string) (enc Encoding, known bool) {
	switch contentType {
	case "", "application/msgpack", "application/x-msgpack":
		return Msgpack, true
	case "application/json":
		return JSON, true
	}
	return Msgpack, false
}
