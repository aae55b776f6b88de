package scrub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// FuzzAppend checks, for any bytes, that Append does not panic, that the
// result is no longer than len(src) + n·MaxMarkerLen, that n == 0 leaves
// the text as it was, that String agrees with Append, that valid UTF-8
// stays valid (no rune is split), and that a second pass leaves every marker
// of the first in place.
//
// It does not assert that a second pass finds nothing, because that does
// not hold: a candidate refused for running on too long can become valid
// once its tail was replaced. In "+0000000000000 3782 822463 10005" the
// phone reads 17 digits and is refused, the card after it is replaced, and
// a second pass then reads "+0000000000000 [card]", a 13-digit phone.
func FuzzAppend(f *testing.F) {
	f.Fuzz(func(t *testing.T, src []byte) {
		out, n := Append(nil, src)
		if len(out) > len(src)+n*MaxMarkerLen {
			t.Fatalf("Append(%q) = %q: %d bytes from %d with %d matches", src, out, len(out), len(src), n)
		}
		if n == 0 && !bytes.Equal(out, src) {
			t.Fatalf("Append(%q) = %q with no match", src, out)
		}
		if s, sn := String(string(src)); s != string(out) || sn != n {
			t.Fatalf("String(%q) = %q, %d; Append gave %q, %d", src, s, sn, out, n)
		}
		if utf8.Valid(src) && !utf8.Valid(out) {
			t.Fatalf("Append(%q) = %q is not valid UTF-8", src, out)
		}
		again, _ := Append(nil, out)
		for _, m := range []string{Email, Phone, Card, IP, IBAN} {
			if bytes.Count(again, []byte(m)) < bytes.Count(out, []byte(m)) {
				t.Fatalf("Append(%q) = %q, and again %q lost a %s", src, out, again, m)
			}
		}
	})
}

// FuzzMsgpack checks that Msgpack does not panic; that it accepts exactly
// what the msgpack package reads as one value (within MaxDepth); that its
// output reads as one value too, equal to the input with every string
// scrubbed by String; and that n == 0 gives the input back byte for byte.
func FuzzMsgpack(f *testing.F) {
	f.Fuzz(func(t *testing.T, src []byte) {
		out, n, err := Msgpack(nil, src)
		in, inErr := mpTree(src)
		if err != nil {
			if errors.Is(err, ErrMalformed) && inErr == nil {
				t.Fatalf("Msgpack(% x) = %v; the msgpack package reads %v", src, err, in)
			}
			return
		}
		if inErr != nil {
			t.Fatalf("Msgpack(% x) accepted what the msgpack package refuses: %v", src, inErr)
		}
		if n == 0 && !bytes.Equal(out, src) {
			t.Fatalf("Msgpack(% x) = % x with no match", src, out)
		}
		got, err := mpTree(out)
		if err != nil {
			t.Fatalf("Msgpack(% x) = % x does not decode: %v", src, out, err)
		}
		want, wantN := scrubTree(in)
		if fmt.Sprint(got) != fmt.Sprint(want) || n != wantN {
			t.Fatalf("Msgpack(% x) decodes as %v, %d; want %v, %d", src, got, n, want, wantN)
		}
	})
}

// FuzzJSON checks that JSON does not panic; that it accepts exactly what
// encoding/json calls valid (within MaxDepth); that its output is valid and
// decodes as the input with every string scrubbed by String; and that
// n == 0 gives the input back byte for byte.
func FuzzJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, src []byte) {
		out, n, err := JSON(nil, src)
		valid := json.Valid(src)
		if err != nil {
			if valid && !errors.Is(err, ErrDepth) {
				t.Fatalf("JSON(%q) = %v, but it is valid", src, err)
			}
			return
		}
		if !valid {
			t.Fatalf("JSON(%q) accepted invalid JSON", src)
		}
		if n == 0 && !bytes.Equal(out, src) {
			t.Fatalf("JSON(%q) = %q with no match", src, out)
		}
		if !json.Valid(out) {
			t.Fatalf("JSON(%q) = %q is not valid", src, out)
		}
		in, err := jsonTree(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := jsonTree(out)
		if err != nil {
			t.Fatal(err)
		}
		want, wantN := scrubTree(in)
		if fmt.Sprint(got) != fmt.Sprint(want) || n != wantN {
			t.Fatalf("JSON(%q) = %q decodes as %v, %d; want %v, %d", src, out, got, n, want, wantN)
		}
	})
}

// ext is an ext value as read, which is not text.
type ext string

// pairs is a map read in order, keys and values alternating, so that keys
// that become equal when scrubbed stay apart.
type pairs []any

// scrubTree returns v with every string in it scrubbed, and the count.
func scrubTree(v any) (any, int) {
	switch v := v.(type) {
	case string:
		return String(v)
	case []any:
		out, total := make([]any, len(v)), 0
		for i, e := range v {
			var n int
			out[i], n = scrubTree(e)
			total += n
		}
		return out, total
	case pairs:
		out, n := scrubTree([]any(v))
		return pairs(out.([]any)), n
	}
	return v, 0
}

// mpTree reads one msgpack value that must fill src, maps as pairs.
func mpTree(src []byte) (any, error) {
	d := msgpack.NewDecoder(bytes.NewReader(src))
	v, err := mpValue(d, 0)
	if err != nil {
		return nil, err
	}
	if d.Buffered().(*bytes.Reader).Len() != 0 {
		return nil, errors.New("trailing bytes")
	}
	return v, nil
}

func mpValue(d *msgpack.Decoder, depth int) (any, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	isMap := msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
	isArray := msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
	if !isMap && !isArray {
		// Strings, bin and ext are read here, their lengths checked against
		// the input first: the msgpack package allocates whatever a header
		// declares before reading it.
		left := d.Buffered().(*bytes.Reader)
		var n int
		var id int8
		switch {
		case msgpcode.IsString(c) || msgpcode.IsBin(c):
			n, err = d.DecodeBytesLen()
		case msgpcode.IsExt(c):
			id, n, err = d.DecodeExtHeader()
		default:
			return d.DecodeInterface()
		}
		if err != nil {
			return nil, err
		}
		if n < 0 || n > left.Len() {
			return nil, errors.New("payload longer than the input")
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(left, b); err != nil {
			return nil, err
		}
		switch {
		case msgpcode.IsString(c):
			return string(b), nil
		case msgpcode.IsBin(c):
			return b, nil
		}
		return ext(fmt.Sprintf("ext %d % x", id, b)), nil
	}
	if depth >= MaxDepth {
		return nil, ErrDepth
	}
	var n int
	if isMap {
		n, err = d.DecodeMapLen()
		n *= 2
	} else {
		n, err = d.DecodeArrayLen()
	}
	if err != nil {
		return nil, err
	}
	// Every element takes a byte at least; the msgpack package does not
	// check this first and spends minutes on a short input claiming 65535.
	if n > d.Buffered().(*bytes.Reader).Len() {
		return nil, errors.New("container longer than the input")
	}
	out := make([]any, 0, min(n, 64))
	for range n {
		e, err := mpValue(d, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if isMap {
		return pairs(out), nil
	}
	return out, nil
}

// jsonTree reads a JSON value, objects as pairs.
func jsonTree(src []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(src))
	d.UseNumber()
	return jsonValue(d)
}

func jsonValue(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	var out []any
	for d.More() {
		e, err := jsonValue(d)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	if delim == '{' {
		return pairs(out), nil
	}
	return out, nil
}
