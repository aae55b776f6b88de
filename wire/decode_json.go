package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// decodeJSON fills req from a JSON object. JSON is the convenience encoding
// for people and scripts: it is bounded (a JSON array cannot declare a
// length) but not allocation-free.
func DecodeJSON(data []byte, dim int, req *Request) *Error {
	req.reset()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return jsonErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return Errorf(CodeBadEncoding, "json: body is not an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonErr(err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return jsonErr(err)
		}
		if e := jsonField(lookupField([]byte(key)), raw, dim, req); e != nil {
			return e
		}
	}
	if _, err := dec.Token(); err != nil {
		return jsonErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(CodeBadEncoding, "json: data after the object")
	}
	return nil
}

func jsonErr(err error) *Error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return Errorf(CodeBadEncoding, "json: body ends inside a value")
	}
	return Errorf(CodeBadEncoding, "json: %v", err)
}

func jsonKind(raw []byte) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a bool"
	case 'n':
		return "null"
	}
	return "a number"
}

func jsonField(f fieldKey, raw json.RawMessage, dim int, req *Request) *Error {
	if f == fUnknown || raw[0] == 'n' { // unknown fields are ignored; null means "not given"
		return nil
	}
	switch {
	case isNumberField(f):
		if k := jsonKind(raw); k != "a number" {
			return Errorf(CodeBadRequest, "%s: got %s, want a number", f, k)
		}
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return Errorf(CodeBadValue, "%s: %s is out of range", f, raw)
		}
		return req.setNumber(f, v)
	case isStringField(f):
		if raw[0] != '"' {
			return Errorf(CodeBadRequest, "%s: got %s, want a string", f, jsonKind(raw))
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return jsonErr(err)
		}
		req.setString(f, []byte(s))
	case isBoolField(f):
		if raw[0] != 't' && raw[0] != 'f' {
			return Errorf(CodeBadRequest, "%s: got %s, want a bool", f, jsonKind(raw))
		}
		req.setBool(f, raw[0] == 't')
	case f == fMeta:
		if jsonDepth(raw) > MaxDepth {
			return Errorf(CodeTooLarge, "meta: nested deeper than %d levels", MaxDepth)
		}
		req.Meta, req.has = raw, req.has|HasMeta
	case f == fVector:
		return jsonVector(raw, dim, req)
	}
	return nil
}

// jsonVector parses an array of numbers that the json decoder has already
// checked for syntax.
func jsonVector(raw []byte, dim int, req *Request) *Error {
	if raw[0] != '[' {
		return Errorf(CodeBadRequest, "vector: got %s, want an array of numbers", jsonKind(raw))
	}
	v := req.Vector[:dim]
	n := 0
	p := 1
	for {
		p = skipSpace(raw, p)
		if raw[p] == ']' {
			break
		}
		if raw[p] == ',' {
			p = skipSpace(raw, p+1)
		}
		end := p
		for end < len(raw) && !isJSONDelim(raw[end]) {
			end++
		}
		if k := jsonKind(raw[p:]); k != "a number" {
			return Errorf(CodeBadRequest, "vector[%d]: got %s, want a number", n, k)
		}
		if n < dim {
			x, err := strconv.ParseFloat(string(raw[p:end]), 64)
			if err != nil {
				return Errorf(CodeBadValue, "vector[%d]: %s is not a finite float32", n, raw[p:end])
			}
			f, e := checkFloat32(n, x)
			if e != nil {
				return e
			}
			v[n] = f
		}
		n++
		p = end
	}
	if n != dim {
		return Errorf(CodeBadDimension, "vector: %d elements, want %d", n, dim)
	}
	req.Vector, req.has = v, req.has|HasVector
	return nil
}

// jsonDepth is the deepest nesting of arrays and objects in valid JSON.
func jsonDepth(raw []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

func skipSpace(b []byte, p int) int {
	for p < len(b) && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r') {
		p++
	}
	return p
}

func isJSONDelim(c byte) bool {
	return c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}
