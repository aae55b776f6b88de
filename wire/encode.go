package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// ResultEncoder turns outcomes into result bodies. It reuses its buffers;
// the returned slice is valid until the next call.
type ResultEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
	js  []byte
}

func NewResultEncoder() *ResultEncoder {
	re := &ResultEncoder{}
	re.enc = msgpack.NewEncoder(&re.buf)
	return re
}

func (re *ResultEncoder) Encode(o *Outcome) []byte {
	if o.Enc == JSON {
		re.js = appendJSONOutcome(re.js[:0], o)
		return re.js
	}
	re.buf.Reset()
	re.msgpackOutcome(o)
	return re.buf.Bytes()
}

func (o *Outcome) fieldCount() int {
	n := 6 // op, memory, req_id, seq, ok, latency
	if o.Err != nil {
		return n + 1 // error
	}
	if o.Decided {
		n += 4 // accepted, moral, threshold, id
		if !o.Accepted {
			n++
		}
		if o.HasEvicted {
			n++
		}
	}
	if o.Decided && o.Scrubs {
		n++ // scrubbed
	}
	switch o.Op {
	case OpForget:
		n += 2 // id, found
	case OpCreate:
		n++ // config
	case OpInfo:
		n += 4 // config, size, threshold, ema
	case OpDrop:
		n++ // found
	}
	if o.WithMatches {
		n++
	}
	return n
}

// msgpackOutcome writes o as a msgpack map. Writes to a bytes.Buffer do not
// fail, so the encoder's errors are not checked.
func (re *ResultEncoder) msgpackOutcome(o *Outcome) {
	e := re.enc
	_ = e.EncodeMapLen(o.fieldCount())
	str := func(k, v string) { _ = e.EncodeString(k); _ = e.EncodeString(v) }
	str("op", o.OpName)
	str("memory", o.Memory)
	str("req_id", o.ReqID)
	_ = e.EncodeString("seq")
	_ = e.EncodeUint(o.Seq)
	_ = e.EncodeString("ok")
	_ = e.EncodeBool(o.Err == nil)
	if o.Err != nil {
		_ = e.EncodeString("error")
		_ = e.EncodeMapLen(2)
		str("code", string(o.Err.Code))
		str("message", o.Err.Message)
	} else {
		if o.Decided {
			_ = e.EncodeString("accepted")
			_ = e.EncodeBool(o.Accepted)
			if !o.Accepted {
				str("reason", o.Reason)
			}
			_ = e.EncodeString("moral")
			_ = e.EncodeFloat64(o.Moral)
			_ = e.EncodeString("threshold")
			_ = e.EncodeFloat64(o.Threshold)
			str("id", o.ID)
			if o.HasEvicted {
				str("evicted", o.Evicted)
			}
		}
		if o.Decided && o.Scrubs {
			_ = e.EncodeString("scrubbed")
			_ = e.EncodeInt(int64(o.Scrubbed))
		}
		switch o.Op {
		case OpForget:
			str("id", o.ID)
			_ = e.EncodeString("found")
			_ = e.EncodeBool(o.Found)
		case OpCreate:
			re.msgpackConfig(o.Config)
		case OpInfo:
			re.msgpackConfig(o.Config)
			_ = e.EncodeString("size")
			_ = e.EncodeInt(int64(o.Size))
			_ = e.EncodeString("threshold")
			_ = e.EncodeFloat64(o.Threshold)
			_ = e.EncodeString("ema")
			_ = e.EncodeFloat64(o.EMA)
		case OpDrop:
			_ = e.EncodeString("found")
			_ = e.EncodeBool(o.Found)
		}
		if o.WithMatches {
			_ = e.EncodeString("matches")
			_ = e.EncodeArrayLen(len(o.Matches))
			for i := range o.Matches {
				m := &o.Matches[i]
				n := 5
				if m.Vector != nil {
					n++
				}
				_ = e.EncodeMapLen(n)
				str("id", m.ID)
				_ = e.EncodeString("score")
				_ = e.EncodeFloat32(m.Score)
				_ = e.EncodeString("phase")
				_ = e.EncodeFloat64(m.Phase)
				_ = e.EncodeString("confidence")
				_ = e.EncodeFloat64(m.Confidence)
				_ = e.EncodeString("meta")
				re.buf.Write(metaAs(m.Meta, Msgpack))
				if m.Vector != nil {
					_ = e.EncodeString("vector")
					_ = e.EncodeArrayLen(len(m.Vector))
					for _, x := range m.Vector {
						_ = e.EncodeFloat32(x)
					}
				}
			}
		}
	}
	_ = e.EncodeString("latency")
	_ = e.EncodeMapLen(4)
	for _, kv := range [...]struct {
		k string
		v int64
	}{{"queue_us", o.QueueUS}, {"process_us", o.ProcessUS}, {"total_us", o.TotalUS}, {"batch", int64(o.Batch)}} {
		_ = e.EncodeString(kv.k)
		_ = e.EncodeInt(kv.v)
	}
}

// msgpackConfig writes the config field.
func (re *ResultEncoder) msgpackConfig(c *MemoryConfig) {
	e := re.enc
	_ = e.EncodeString("config")
	_ = e.EncodeMapLen(7)
	_ = e.EncodeString("dim")
	_ = e.EncodeInt(int64(c.Dim))
	_ = e.EncodeString("capacity")
	_ = e.EncodeInt(int64(c.Capacity))
	_ = e.EncodeString("eviction")
	_ = e.EncodeString(c.Eviction)
	_ = e.EncodeString("filter_threshold")
	_ = e.EncodeFloat64(c.FilterThreshold)
	_ = e.EncodeString("filter_adaptive")
	_ = e.EncodeBool(c.FilterAdaptive)
	_ = e.EncodeString("scrub")
	_ = e.EncodeBool(c.Scrub)
	_ = e.EncodeString("ttl")
	_ = e.EncodeFloat64(c.TTL)
}

var (
	msgpackNil = []byte{0xc0}
	jsonNull   = []byte("null")
)

// metaAs returns a stored (tagged) meta value in encoding want, converting
// between msgpack and JSON when it was stored in the other one.
func metaAs(tagged []byte, want Encoding) []byte {
	if len(tagged) == 0 {
		if want == JSON {
			return jsonNull
		}
		return msgpackNil
	}
	raw := tagged[1:]
	if tagged[0] == MetaTag(want) {
		return raw
	}
	if want == JSON {
		dec := msgpack.NewDecoder(bytes.NewReader(raw))
		// Maps with keys of any type, which jsonable then turns into
		// strings; msgpack's default decoder fails on a non-string key.
		dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
		v, err := dec.DecodeInterface()
		if err != nil {
			return jsonNull
		}
		b, err := json.Marshal(jsonable(v))
		if err != nil {
			return jsonNull
		}
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return msgpackNil
	}
	b, err := msgpack.Marshal(fromJSON(v))
	if err != nil {
		return msgpackNil
	}
	return b
}

// jsonable turns msgpack's decoded maps with non-string keys into maps that
// encoding/json accepts.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
	}
	return v
}

// fromJSON keeps JSON integers as integers when they go to msgpack.
func fromJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = fromJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fromJSON(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

func appendJSONOutcome(b []byte, o *Outcome) []byte {
	b = append(b, `{"op":`...)
	b = appendJSONString(b, o.OpName)
	b = append(b, `,"memory":`...)
	b = appendJSONString(b, o.Memory)
	b = append(b, `,"req_id":`...)
	b = appendJSONString(b, o.ReqID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, o.Seq, 10)
	b = append(b, `,"ok":`...)
	b = strconv.AppendBool(b, o.Err == nil)
	if o.Err != nil {
		b = append(b, `,"error":{"code":`...)
		b = appendJSONString(b, string(o.Err.Code))
		b = append(b, `,"message":`...)
		b = appendJSONString(b, o.Err.Message)
		b = append(b, '}')
	} else {
		if o.Decided {
			b = append(b, `,"accepted":`...)
			b = strconv.AppendBool(b, o.Accepted)
			if !o.Accepted {
				b = append(b, `,"reason":`...)
				b = appendJSONString(b, o.Reason)
			}
			b = append(b, `,"moral":`...)
			b = appendJSONFloat(b, o.Moral, 64)
			b = append(b, `,"threshold":`...)
			b = appendJSONFloat(b, o.Threshold, 64)
			b = append(b, `,"id":`...)
			b = appendJSONString(b, o.ID)
			if o.HasEvicted {
				b = append(b, `,"evicted":`...)
				b = appendJSONString(b, o.Evicted)
			}
		}
		if o.Decided && o.Scrubs {
			b = append(b, `,"scrubbed":`...)
			b = strconv.AppendInt(b, int64(o.Scrubbed), 10)
		}
		switch o.Op {
		case OpForget:
			b = append(b, `,"id":`...)
			b = appendJSONString(b, o.ID)
			b = append(b, `,"found":`...)
			b = strconv.AppendBool(b, o.Found)
		case OpCreate:
			b = appendJSONConfig(b, o.Config)
		case OpInfo:
			b = appendJSONConfig(b, o.Config)
			b = append(b, `,"size":`...)
			b = strconv.AppendInt(b, int64(o.Size), 10)
			b = append(b, `,"threshold":`...)
			b = appendJSONFloat(b, o.Threshold, 64)
			b = append(b, `,"ema":`...)
			b = appendJSONFloat(b, o.EMA, 64)
		case OpDrop:
			b = append(b, `,"found":`...)
			b = strconv.AppendBool(b, o.Found)
		}
		if o.WithMatches {
			b = append(b, `,"matches":[`...)
			for i := range o.Matches {
				m := &o.Matches[i]
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"id":`...)
				b = appendJSONString(b, m.ID)
				b = append(b, `,"score":`...)
				b = appendJSONFloat(b, float64(m.Score), 32)
				b = append(b, `,"phase":`...)
				b = appendJSONFloat(b, m.Phase, 64)
				b = append(b, `,"confidence":`...)
				b = appendJSONFloat(b, m.Confidence, 64)
				b = append(b, `,"meta":`...)
				b = append(b, metaAs(m.Meta, JSON)...)
				if m.Vector != nil {
					b = append(b, `,"vector":[`...)
					for j, x := range m.Vector {
						if j > 0 {
							b = append(b, ',')
						}
						b = appendJSONFloat(b, float64(x), 32)
					}
					b = append(b, ']')
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
	}
	b = append(b, `,"latency":{"queue_us":`...)
	b = strconv.AppendInt(b, o.QueueUS, 10)
	b = append(b, `,"process_us":`...)
	b = strconv.AppendInt(b, o.ProcessUS, 10)
	b = append(b, `,"total_us":`...)
	b = strconv.AppendInt(b, o.TotalUS, 10)
	b = append(b, `,"batch":`...)
	b = strconv.AppendInt(b, int64(o.Batch), 10)
	return append(b, "}}"...)
}

func appendJSONConfig(b []byte, c *MemoryConfig) []byte {
	b = append(b, `,"config":{"dim":`...)
	b = strconv.AppendInt(b, int64(c.Dim), 10)
	b = append(b, `,"capacity":`...)
	b = strconv.AppendInt(b, int64(c.Capacity), 10)
	b = append(b, `,"eviction":`...)
	b = appendJSONString(b, c.Eviction)
	b = append(b, `,"filter_threshold":`...)
	b = appendJSONFloat(b, c.FilterThreshold, 64)
	b = append(b, `,"filter_adaptive":`...)
	b = strconv.AppendBool(b, c.FilterAdaptive)
	b = append(b, `,"scrub":`...)
	b = strconv.AppendBool(b, c.Scrub)
	b = append(b, `,"ttl":`...)
	b = appendJSONFloat(b, c.TTL, 64)
	return append(b, '}')
}

func appendJSONFloat(b []byte, f float64, bits int) []byte {
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and replacing invalid UTF-8 with U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c >= 0x20:
				b = append(b, c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
