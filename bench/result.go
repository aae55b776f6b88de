package bench

import (
	"encoding/binary"
	"errors"
)

var errMalformed = errors.New("malformed msgpack")

// scanResult reads a msgpack result map as far as its "ok" field and, when
// ok is false, its error code. It allocates only the code of an error.
func scanResult(b []byte) (ok bool, code string, err error) {
	n, b, err := readMapLen(b)
	if err != nil {
		return false, "", err
	}
	sawOK := false
	for range n {
		var key []byte
		if key, b, err = readStr(b); err != nil {
			return false, "", err
		}
		switch string(key) {
		case "ok":
			if len(b) == 0 || (b[0] != 0xc2 && b[0] != 0xc3) {
				return false, "", errMalformed
			}
			ok, sawOK, b = b[0] == 0xc3, true, b[1:]
			if ok {
				return true, "", nil
			}
			continue
		case "error":
			return false, errorCode(b), nil
		}
		if b, err = skip(b, 0); err != nil {
			return false, "", err
		}
	}
	if !sawOK {
		return false, "", errMalformed
	}
	return false, "", nil
}

// errorCode reads the code of an {code, message} map, or "unknown".
func errorCode(b []byte) string {
	n, b, err := readMapLen(b)
	if err != nil {
		return "unknown"
	}
	for range n {
		var key, val []byte
		if key, b, err = readStr(b); err != nil {
			return "unknown"
		}
		if string(key) == "code" {
			if val, _, err = readStr(b); err == nil {
				return string(val)
			}
			return "unknown"
		}
		if b, err = skip(b, 0); err != nil {
			return "unknown"
		}
	}
	return "unknown"
}

func readMapLen(b []byte) (int, []byte, error) {
	if len(b) == 0 {
		return 0, nil, errMalformed
	}
	switch c := b[0]; {
	case c&0xf0 == 0x80:
		return int(c & 0x0f), b[1:], nil
	case c == 0xde && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:])), b[3:], nil
	case c == 0xdf && len(b) >= 5:
		return int(binary.BigEndian.Uint32(b[1:])), b[5:], nil
	}
	return 0, nil, errMalformed
}

func readStr(b []byte) ([]byte, []byte, error) {
	if len(b) == 0 {
		return nil, nil, errMalformed
	}
	var n, h int
	switch c := b[0]; {
	case c&0xe0 == 0xa0:
		n, h = int(c&0x1f), 1
	case c == 0xd9 && len(b) >= 2:
		n, h = int(b[1]), 2
	case c == 0xda && len(b) >= 3:
		n, h = int(binary.BigEndian.Uint16(b[1:])), 3
	case c == 0xdb && len(b) >= 5:
		n, h = int(binary.BigEndian.Uint32(b[1:])), 5
	default:
		return nil, nil, errMalformed
	}
	if len(b)-h < n {
		return nil, nil, errMalformed
	}
	return b[h : h+n], b[h+n:], nil
}

// skip returns b after one msgpack value.
func skip(b []byte, depth int) ([]byte, error) {
	if len(b) == 0 || depth > 64 {
		return nil, errMalformed
	}
	c := b[0]
	var head, body, items int // bytes of header, bytes of payload, nested values
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		head = 1
	case c&0xf0 == 0x80:
		head, items = 1, 2*int(c&0x0f)
	case c&0xf0 == 0x90:
		head, items = 1, int(c&0x0f)
	case c&0xe0 == 0xa0:
		head, body = 1, int(c&0x1f)
	case c == 0xcc || c == 0xd0:
		head = 2
	case c == 0xcd || c == 0xd1:
		head = 3
	case c == 0xca || c == 0xce || c == 0xd2:
		head = 5
	case c == 0xcb || c == 0xcf || c == 0xd3:
		head = 9
	case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16
		head = 2 + 1<<(c-0xd4)
	case c == 0xc4 || c == 0xd9 || c == 0xc7:
		if len(b) < 2 {
			return nil, errMalformed
		}
		head, body = 2, int(b[1])
		if c == 0xc7 {
			head++
		}
	case c == 0xc5 || c == 0xda || c == 0xc8 || c == 0xdc || c == 0xde:
		if len(b) < 3 {
			return nil, errMalformed
		}
		n := int(binary.BigEndian.Uint16(b[1:]))
		head = 3
		switch c {
		case 0xdc:
			items = n
		case 0xde:
			items = 2 * n
		case 0xc8:
			head, body = 4, n
		default:
			body = n
		}
	case c == 0xc6 || c == 0xdb || c == 0xc9 || c == 0xdd || c == 0xdf:
		if len(b) < 5 {
			return nil, errMalformed
		}
		n := int(binary.BigEndian.Uint32(b[1:]))
		head = 5
		switch c {
		case 0xdd:
			items = n
		case 0xdf:
			items = 2 * n
		case 0xc9:
			head, body = 6, n
		default:
			body = n
		}
	default:
		return nil, errMalformed
	}
	if len(b) < head+body || items > len(b) {
		return nil, errMalformed
	}
	b = b[head+body:]
	for range items {
		var err error
		if b, err = skip(b, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// echoBody is the echo's reply of about size bytes: {"ok": true, "pad":
// bin}, which scanResult reads as pelm's results.
func echoBody(size int) []byte {
	const overhead = 1 + 3 + 1 + 4 + 3 // map, "ok", true, "pad", bin16 header
	pad := max(size-overhead, 0)
	b := make([]byte, 0, overhead+pad+2)
	b = appendMapLen(b, 2)
	b = appendBool(appendStr(b, "ok"), true)
	b = appendBinLen(appendStr(b, "pad"), pad)
	return append(b, make([]byte, pad)...)
}
