package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Decoder decodes request bodies with msgpack's low-level reader,
// checking every declared length against the bytes the message still holds
// before it reads or allocates anything: a 13-byte message that declares an
// array of four billion numbers is refused at once. It reuses its state and
// does not allocate on success.
type Decoder struct {
	r    bytes.Reader
	d    *msgpack.Decoder
	data []byte
}

func NewDecoder() *Decoder {
	md := &Decoder{}
	md.d = msgpack.NewDecoder(&md.r)
	return md
}

func (md *Decoder) pos() int { return len(md.data) - md.r.Len() }

func (md *Decoder) seek(pos int) { _, _ = md.r.Seek(int64(pos), io.SeekStart) }

var errTruncated = Errorf(CodeBadEncoding, "msgpack: message ends inside a value")

// decode fills req from a msgpack map. dim is the memory's dimension.
func (md *Decoder) Decode(data []byte, dim int, req *Request) *Error {
	md.data = data
	md.r.Reset(data)
	md.d.Reset(&md.r)
	req.reset()

	c, err := md.d.PeekCode()
	if err != nil {
		return Errorf(CodeBadEncoding, "msgpack: empty body")
	}
	if !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return Errorf(CodeBadEncoding, "msgpack: body is %s, want a map", codeKind(c))
	}
	n, err := md.d.DecodeMapLen()
	if err != nil {
		return errTruncated
	}
	if n > md.r.Len()/2 {
		return Errorf(CodeBadEncoding, "msgpack: map declares %d entries, the message holds at most %d", n, md.r.Len()/2)
	}
	for i := 0; i < n; i++ {
		key, e := md.str("key")
		if e != nil {
			return e
		}
		if e := md.field(lookupField(key), dim, req); e != nil {
			return e
		}
	}
	if md.r.Len() != 0 {
		return Errorf(CodeBadEncoding, "msgpack: %d bytes after the map", md.r.Len())
	}
	return nil
}

// str reads a string (or bin) and returns it as a view into the message.
func (md *Decoder) str(what string) ([]byte, *Error) {
	c, err := md.d.PeekCode()
	if err != nil {
		return nil, errTruncated
	}
	if !msgpcode.IsString(c) && !msgpcode.IsBin(c) {
		return nil, Errorf(CodeBadRequest, "%s: got %s, want a string", what, codeKind(c))
	}
	n, err := md.d.DecodeBytesLen()
	if err != nil {
		return nil, errTruncated
	}
	if n > md.r.Len() {
		return nil, Errorf(CodeBadEncoding, "msgpack: %s declares %d bytes, %d remain", what, n, md.r.Len())
	}
	p := md.pos()
	md.seek(p + n)
	return md.data[p : p+n], nil
}

func (md *Decoder) field(f fieldKey, dim int, req *Request) *Error {
	c, err := md.d.PeekCode()
	if err != nil {
		return errTruncated
	}
	if c == msgpcode.Nil && f != fUnknown {
		md.seek(md.pos() + 1) // nil means "not given"
		return nil
	}
	switch {
	case f == fUnknown:
		return md.skip(0)
	case isNumberField(f):
		if !isNumberCode(c) {
			return Errorf(CodeBadRequest, "%s: got %s, want a number", f, codeKind(c))
		}
		v, err := md.d.DecodeFloat64()
		if err != nil {
			return errTruncated
		}
		return req.setNumber(f, v)
	case isStringField(f):
		if !msgpcode.IsString(c) {
			return Errorf(CodeBadRequest, "%s: got %s, want a string", f, codeKind(c))
		}
		s, e := md.str(f.String())
		if e != nil {
			return e
		}
		req.setString(f, s)
	case isBoolField(f):
		if c != msgpcode.True && c != msgpcode.False {
			return Errorf(CodeBadRequest, "%s: got %s, want a bool", f, codeKind(c))
		}
		md.seek(md.pos() + 1)
		req.setBool(f, c == msgpcode.True)
	case f == fMeta:
		start := md.pos()
		if e := md.skip(0); e != nil {
			return e
		}
		req.Meta, req.has = md.data[start:md.pos()], req.has|HasMeta
	case f == fVector:
		return md.vector(c, dim, req)
	}
	return nil
}

// vector decodes an array of numbers or a bin of little-endian float32
// straight into req.Vector.
func (md *Decoder) vector(c byte, dim int, req *Request) *Error {
	switch {
	case msgpcode.IsBin(c):
		b, e := md.str("vector")
		if e != nil {
			return e
		}
		if len(b) != 4*dim {
			return Errorf(CodeBadDimension, "vector: bin of %d bytes, want %d float32 (%d bytes)", len(b), dim, 4*dim)
		}
		v := req.Vector[:dim]
		for i := range v {
			x := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			if x != x || math.IsInf(float64(x), 0) {
				return Errorf(CodeBadValue, "vector[%d]: %v is not finite", i, x)
			}
			v[i] = x
		}
		req.Vector, req.has = v, req.has|HasVector
		return nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
	default:
		return Errorf(CodeBadRequest, "vector: got %s, want an array of numbers or a bin of float32", codeKind(c))
	}
	n, err := md.d.DecodeArrayLen()
	if err != nil {
		return errTruncated
	}
	if n > md.r.Len() {
		return Errorf(CodeBadEncoding, "msgpack: vector declares %d elements, %d bytes remain", n, md.r.Len())
	}
	if n != dim {
		return Errorf(CodeBadDimension, "vector: %d elements, want %d", n, dim)
	}
	v := req.Vector[:dim]
	p, data := md.pos(), md.data
	for i := range v {
		if p >= len(data) {
			return errTruncated
		}
		var x float64
		switch c := data[p]; {
		case c == msgpcode.Float && p+5 <= len(data):
			x = float64(math.Float32frombits(binary.BigEndian.Uint32(data[p+1:])))
			p += 5
		case c == msgpcode.Double && p+9 <= len(data):
			x = math.Float64frombits(binary.BigEndian.Uint64(data[p+1:]))
			p += 9
		case msgpcode.IsFixedNum(c):
			x = float64(int8(c))
			p++
		case isNumberCode(c):
			md.seek(p)
			f, err := md.d.DecodeFloat64()
			if err != nil {
				return errTruncated
			}
			x, p = f, md.pos()
		default:
			if c == msgpcode.Float || c == msgpcode.Double {
				return errTruncated
			}
			return Errorf(CodeBadRequest, "vector[%d]: got %s, want a number", i, codeKind(c))
		}
		f, e := checkFloat32(i, x)
		if e != nil {
			return e
		}
		v[i] = f
	}
	md.seek(p)
	req.Vector, req.has = v, req.has|HasVector
	return nil
}

// skip passes over one value of any kind, bounded in length and depth.
func (md *Decoder) skip(depth int) *Error {
	p, data := md.pos(), md.data
	if p >= len(data) {
		return errTruncated
	}
	c := data[p]
	size, count := 0, 0 // payload bytes after the header; child values
	header := 1
	be := func(w int) int { // big-endian length of w bytes after the code
		if p+1+w > len(data) {
			return -1
		}
		switch w {
		case 1:
			return int(data[p+1])
		case 2:
			return int(binary.BigEndian.Uint16(data[p+1:]))
		}
		return int(binary.BigEndian.Uint32(data[p+1:]))
	}
	switch {
	case msgpcode.IsFixedNum(c), c == msgpcode.Nil, c == msgpcode.False, c == msgpcode.True:
	case msgpcode.IsFixedString(c):
		size = int(c & msgpcode.FixedStrMask)
	case msgpcode.IsFixedArray(c):
		count = int(c & msgpcode.FixedArrayMask)
	case msgpcode.IsFixedMap(c):
		count = 2 * int(c&msgpcode.FixedMapMask)
	case c == msgpcode.Uint8 || c == msgpcode.Int8:
		size = 1
	case c == msgpcode.Uint16 || c == msgpcode.Int16:
		size = 2
	case c == msgpcode.Uint32 || c == msgpcode.Int32 || c == msgpcode.Float:
		size = 4
	case c == msgpcode.Uint64 || c == msgpcode.Int64 || c == msgpcode.Double:
		size = 8
	case c == msgpcode.Str8 || c == msgpcode.Bin8:
		header, size = 2, be(1)
	case c == msgpcode.Str16 || c == msgpcode.Bin16:
		header, size = 3, be(2)
	case c == msgpcode.Str32 || c == msgpcode.Bin32:
		header, size = 5, be(4)
	case c == msgpcode.Array16:
		header, count = 3, be(2)
	case c == msgpcode.Array32:
		header, count = 5, be(4)
	case c == msgpcode.Map16:
		header, count = 3, 2*be(2)
	case c == msgpcode.Map32:
		header, count = 5, 2*be(4)
	case c >= msgpcode.FixExt1 && c <= msgpcode.FixExt16:
		size = 1 + 1<<(c-msgpcode.FixExt1)
	case c == msgpcode.Ext8:
		header, size = 2, be(1)+1
	case c == msgpcode.Ext16:
		header, size = 3, be(2)+1
	case c == msgpcode.Ext32:
		header, size = 5, be(4)+1
	default:
		return Errorf(CodeBadEncoding, "msgpack: invalid code 0x%02x", c)
	}
	if size < 0 || count < 0 || p+header+size > len(data) || count > len(data)-p-header {
		return errTruncated
	}
	md.seek(p + header + size)
	if count > 0 {
		if depth >= MaxDepth {
			return Errorf(CodeTooLarge, "msgpack: nested deeper than %d levels", MaxDepth)
		}
		for i := 0; i < count; i++ {
			if e := md.skip(depth + 1); e != nil {
				return e
			}
		}
	}
	return nil
}

func isNumberCode(c byte) bool {
	return msgpcode.IsFixedNum(c) || (c >= msgpcode.Float && c <= msgpcode.Int64)
}

func codeKind(c byte) string {
	switch {
	case isNumberCode(c):
		return "a number"
	case msgpcode.IsString(c):
		return "a string"
	case msgpcode.IsBin(c):
		return "bytes"
	case msgpcode.IsFixedArray(c), c == msgpcode.Array16, c == msgpcode.Array32:
		return "an array"
	case msgpcode.IsFixedMap(c), c == msgpcode.Map16, c == msgpcode.Map32:
		return "a map"
	case c == msgpcode.True || c == msgpcode.False:
		return "a bool"
	case c == msgpcode.Nil:
		return "nil"
	case msgpcode.IsExt(c):
		return "an extension"
	}
	return "an invalid code"
}
