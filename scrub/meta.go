package scrub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and maps (objects) that Msgpack
// and JSON accept: a scalar has depth 0, a container one more than its
// deepest element.
const MaxDepth = 32

var (
	// ErrMalformed is returned, wrapped with the byte offset, for input that
	// is not exactly one well-formed value.
	ErrMalformed = errors.New("scrub: malformed value")
	// ErrDepth is returned, wrapped, for input nested deeper than MaxDepth.
	ErrDepth = errors.New("scrub: value nested too deep")
)

// meta is the state of one walk: the output so far, and how much of src has
// been accounted for in it. Bytes are copied lazily: only a string that
// changed makes the walker flush src[copied:] up to it and write its new
// form, so an unchanged value comes out byte for byte as it went in.
type meta struct {
	src    []byte
	dst    []byte
	copied int
	n      int
}

func (w *meta) malformed(format string, at int) error {
	return fmt.Errorf("%s at byte %d: %w", format, at, ErrMalformed)
}

// Msgpack appends src, one msgpack value, to dst with every string in it
// scrubbed (map keys, values and array elements, at any depth), and returns
// the extended buffer and the number of matches replaced. Everything but a
// changed string is copied byte for byte: numbers, nil, bools, bin and ext
// keep their encoding, and an unchanged string keeps its header even if it
// was not the shortest. A changed string gets the shortest str header for
// its new length (fixstr, str8, str16 or str32). With n == 0 the appended
// bytes equal src.
//
// Input that is not exactly one well-formed value, or is nested deeper than
// MaxDepth, is an error wrapping ErrMalformed or ErrDepth; dst is then
// returned as it was. Msgpack allocates nothing when dst has room.
func Msgpack(dst, src []byte) (out []byte, n int, err error) {
	w := meta{src: src, dst: dst}
	end, err := w.msgpack(0, 0)
	if err == nil && end != len(src) {
		err = w.malformed("scrub: msgpack: trailing bytes", end)
	}
	if err != nil {
		return dst, 0, err
	}
	return append(w.dst, src[w.copied:]...), w.n, nil
}

// msgpack walks the value at i, of the given depth, and returns its end.
func (w *meta) msgpack(i, depth int) (int, error) {
	src := w.src
	if i >= len(src) {
		return 0, w.malformed("scrub: msgpack: truncated", i)
	}
	c := src[i]
	var hdr int            // header bytes
	var size, elems uint64 // payload bytes, or elements
	container, str := false, false
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		hdr = 1
	case c <= 0x8f: // fixmap
		hdr, elems, container = 1, 2*uint64(c&0x0f), true
	case c <= 0x9f: // fixarray
		hdr, elems, container = 1, uint64(c&0x0f), true
	case c <= 0xbf: // fixstr
		hdr, size, str = 1, uint64(c&0x1f), true
	case c == 0xc4, c == 0xc5, c == 0xc6: // bin 8, 16, 32
		hdr = 1 + 1<<(c-0xc4)
	case c == 0xc7, c == 0xc8, c == 0xc9: // ext 8, 16, 32: length, type
		hdr = 2 + 1<<(c-0xc7)
	case c == 0xca:
		hdr = 5
	case c == 0xcb:
		hdr = 9
	case c >= 0xcc && c <= 0xcf: // uint 8-64
		hdr = 1 + 1<<(c-0xcc)
	case c >= 0xd0 && c <= 0xd3: // int 8-64
		hdr = 1 + 1<<(c-0xd0)
	case c >= 0xd4 && c <= 0xd8: // fixext 1-16: type, data
		hdr = 2 + 1<<(c-0xd4)
	case c == 0xd9, c == 0xda, c == 0xdb: // str 8, 16, 32
		hdr, str = 1+1<<(c-0xd9), true
	case c == 0xdc, c == 0xdd: // array 16, 32
		hdr, container = 1+2<<(c-0xdc), true
	case c == 0xde, c == 0xdf: // map 16, 32
		hdr, container = 1+2<<(c-0xde), true
	default: // 0xc1, never used
		return 0, w.malformed("scrub: msgpack: invalid type byte", i)
	}
	if hdr > len(src)-i {
		return 0, w.malformed("scrub: msgpack: truncated header", i)
	}
	// Lengths that follow the type byte.
	switch c {
	case 0xc4, 0xc7, 0xd9:
		size = uint64(src[i+1])
	case 0xc5, 0xc8, 0xda:
		size = uint64(binary.BigEndian.Uint16(src[i+1:]))
	case 0xc6, 0xc9, 0xdb:
		size = uint64(binary.BigEndian.Uint32(src[i+1:]))
	case 0xdc:
		elems = uint64(binary.BigEndian.Uint16(src[i+1:]))
	case 0xdd:
		elems = uint64(binary.BigEndian.Uint32(src[i+1:]))
	case 0xde:
		elems = 2 * uint64(binary.BigEndian.Uint16(src[i+1:]))
	case 0xdf:
		elems = 2 * uint64(binary.BigEndian.Uint32(src[i+1:]))
	}
	j := i + hdr
	if !container {
		if size > uint64(len(src)-j) {
			return 0, w.malformed("scrub: msgpack: truncated payload", i)
		}
		end := j + int(size)
		if str {
			w.msgpackString(i, j, end)
		}
		return end, nil
	}
	if depth >= MaxDepth {
		return 0, fmt.Errorf("scrub: msgpack at byte %d: %w", i, ErrDepth)
	}
	if elems > uint64(len(src)-j) { // every element takes a byte at least
		return 0, w.malformed("scrub: msgpack: truncated container", i)
	}
	for range elems {
		var err error
		if j, err = w.msgpack(j, depth+1); err != nil {
			return 0, err
		}
	}
	return j, nil
}

// msgpackString scrubs the string whose header starts at h and whose bytes
// are src[a:b], and writes it anew if it changed.
func (w *meta) msgpackString(h, a, b int) {
	const room = 5 // the longest header, str32
	dst := append(w.dst, w.src[w.copied:h]...)
	at := len(dst)
	dst = append(dst, make([]byte, room)...)
	dst, k := Append(dst, w.src[a:b])
	if k == 0 {
		w.dst = dst[:at]
		w.copied = h
		return
	}
	m := len(dst) - at - room
	var hdr [room]byte
	var hl int
	switch {
	case m < 32:
		hdr[0], hl = 0xa0|byte(m), 1
	case m < 1<<8:
		hdr[0], hdr[1], hl = 0xd9, byte(m), 2
	case m < 1<<16:
		hdr[0], hl = 0xda, 3
		binary.BigEndian.PutUint16(hdr[1:], uint16(m))
	default:
		hdr[0], hl = 0xdb, 5
		binary.BigEndian.PutUint32(hdr[1:], uint32(m))
	}
	copy(dst[at:], hdr[:hl])
	copy(dst[at+hl:], dst[at+room:])
	w.dst = dst[:at+hl+m]
	w.copied = b
	w.n += k
}

// JSON appends src, one JSON value (RFC 8259), to dst with every string in
// it scrubbed (object keys, values and array elements, at any depth), and
// returns the extended buffer and the number of matches replaced. Everything
// but a changed string is copied byte for byte, whitespace included. A
// changed string is unescaped, scrubbed and escaped again with the shortest
// escapes ("\"", "\\", "\n" and the like, "\u00XX" for other control
// characters); other characters are written as UTF-8, a lone surrogate
// escape as U+FFFD. Bytes that are not UTF-8 are kept as they were. With
// n == 0 the appended bytes equal src.
//
// Input that is not exactly one well-formed value (surrounding whitespace
// allowed), or is nested deeper than MaxDepth, is an error wrapping
// ErrMalformed or ErrDepth; dst is then returned as it was. JSON allocates
// nothing when dst has room for the result and, for a changed string with
// escapes, three copies of it.
func JSON(dst, src []byte) (out []byte, n int, err error) {
	w := meta{src: src, dst: dst}
	end, err := w.json(jsonSpace(src, 0), 0)
	if err == nil {
		if end = jsonSpace(src, end); end != len(src) {
			err = w.malformed("scrub: json: trailing bytes", end)
		}
	}
	if err != nil {
		return dst, 0, err
	}
	return append(w.dst, src[w.copied:]...), w.n, nil
}

func jsonSpace(src []byte, i int) int {
	for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r') {
		i++
	}
	return i
}

// json walks the value at i, of the given depth, and returns its end.
func (w *meta) json(i, depth int) (int, error) {
	src := w.src
	if i >= len(src) {
		return 0, w.malformed("scrub: json: truncated", i)
	}
	switch c := src[i]; c {
	case '{', '[':
		if depth >= MaxDepth {
			return 0, fmt.Errorf("scrub: json at byte %d: %w", i, ErrDepth)
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		j := jsonSpace(src, i+1)
		if j < len(src) && src[j] == closer {
			return j + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if j >= len(src) || src[j] != '"' {
					return 0, w.malformed("scrub: json: want a key", j)
				}
				if j, err = w.jsonString(j); err != nil {
					return 0, err
				}
				if j = jsonSpace(src, j); j >= len(src) || src[j] != ':' {
					return 0, w.malformed("scrub: json: want ':'", j)
				}
				j = jsonSpace(src, j+1)
			}
			if j, err = w.json(j, depth+1); err != nil {
				return 0, err
			}
			j = jsonSpace(src, j)
			switch {
			case j < len(src) && src[j] == ',':
				j = jsonSpace(src, j+1)
			case j < len(src) && src[j] == closer:
				return j + 1, nil
			default:
				return 0, w.malformed("scrub: json: want ',' or a closing bracket", j)
			}
		}
	case '"':
		return w.jsonString(i)
	case 't':
		return jsonLiteral(w, i, "true")
	case 'f':
		return jsonLiteral(w, i, "false")
	case 'n':
		return jsonLiteral(w, i, "null")
	default:
		return jsonNumber(w, i)
	}
}

func jsonLiteral(w *meta, i int, lit string) (int, error) {
	if len(w.src)-i < len(lit) || string(w.src[i:i+len(lit)]) != lit {
		return 0, w.malformed("scrub: json: invalid literal", i)
	}
	return i + len(lit), nil
}

// jsonNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at i.
func jsonNumber(w *meta, i int) (int, error) {
	src, j := w.src, i
	digits := func() bool {
		k := j
		for j < len(src) && isDigit(src[j]) {
			j++
		}
		return j > k
	}
	if j < len(src) && src[j] == '-' {
		j++
	}
	switch {
	case j < len(src) && src[j] == '0':
		j++
	case !digits():
		return 0, w.malformed("scrub: json: invalid value", i)
	}
	if j < len(src) && src[j] == '.' {
		j++
		if !digits() {
			return 0, w.malformed("scrub: json: invalid number", i)
		}
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		j++
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if !digits() {
			return 0, w.malformed("scrub: json: invalid number", i)
		}
	}
	return j, nil
}

// jsonString checks the string whose opening quote is at q, scrubs it, and
// writes it anew if it changed. It returns the index after the closing
// quote.
func (w *meta) jsonString(q int) (int, error) {
	src := w.src
	escaped := false
	j := q + 1
	for {
		if j >= len(src) {
			return 0, w.malformed("scrub: json: unterminated string", q)
		}
		c := src[j]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return 0, w.malformed("scrub: json: control character in string", j)
		}
		if c != '\\' {
			j++
			continue
		}
		escaped = true
		if j+1 >= len(src) {
			return 0, w.malformed("scrub: json: unterminated string", q)
		}
		switch src[j+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j += 2
		case 'u':
			if len(src)-j < 6 || !isHex(src[j+2]) || !isHex(src[j+3]) || !isHex(src[j+4]) || !isHex(src[j+5]) {
				return 0, w.malformed("scrub: json: invalid \\u escape", j)
			}
			j += 6
		default:
			return 0, w.malformed("scrub: json: invalid escape", j)
		}
	}
	a, b := q+1, j // the string's bytes, still escaped
	dst := append(w.dst, src[w.copied:a]...)
	w.copied = a
	at := len(dst)
	if !escaped {
		// The bytes need no escapes, and neither do markers.
		var k int
		if dst, k = Append(dst, src[a:b]); k == 0 {
			w.dst = dst[:at]
			return b + 1, nil
		}
		w.dst, w.copied, w.n = dst, b, w.n+k
		return b + 1, nil
	}
	// Unescape, scrub and escape in the spare room after the output, then
	// move the result to where it belongs.
	dst = jsonUnescape(dst, src[a:b])
	u := len(dst)
	dst, k := Append(dst, dst[at:u])
	if k == 0 {
		w.dst = dst[:at]
		return b + 1, nil
	}
	s := len(dst)
	dst = jsonEscape(dst, dst[u:s])
	m := copy(dst[at:], dst[s:])
	w.dst, w.copied, w.n = dst[:at+m], b, w.n+k
	return b + 1, nil
}

// jsonUnescape appends the string whose escaped bytes (checked) are s.
func jsonUnescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch e := s[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) && len(s)-i >= 6 && s[i] == '\\' && s[i+1] == 'u' {
				if r2 := utf16.DecodeRune(r, hex4(s[i+2:])); r2 != utf8.RuneError {
					r = r2
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r) // a lone surrogate is U+FFFD
			continue
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			r = r<<4 | rune(c-'0')
		default:
			r = r<<4 | rune(c|0x20-'a'+10)
		}
	}
	return r
}

// jsonEscape appends s escaped as the inside of a JSON string.
func jsonEscape(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c >= 0x20:
			dst = append(dst, c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\b':
			dst = append(dst, '\\', 'b')
		case c == '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return dst
}
