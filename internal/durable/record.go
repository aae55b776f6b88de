package durable

import (
	"bytes"

	"fmt"

	"github.com/pelm-dev/pelm/wire"

	"github.com/vmihailenco/msgpack/v5"
)

// recordEncoder writes the state records of the batch loop by hand into one
// reused buffer: msgpack.Marshal reflects and allocates about four times
// per record. The keys are the records' msgpack tags, so msgpack.Unmarshal
// reads them back (TestRecordEncoderRoundTrip). The bytes returned are
// valid until the next call.
type recordEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
	err error
}

func (e *recordEncoder) start() *msgpack.Encoder {
	if e.enc == nil {
		e.enc = msgpack.NewEncoder(&e.buf)
	}
	e.buf.Reset()
	return e.enc
}

func (e *recordEncoder) check(err error) {
	if err != nil && e.err == nil {
		e.err = err
	}
}

func (e *recordEncoder) str(key, v string) {
	e.check(e.enc.EncodeString(key))
	e.check(e.enc.EncodeString(v))
}

func (e *recordEncoder) bin(key string, v []byte) {
	e.check(e.enc.EncodeString(key))
	e.check(e.enc.EncodeBytes(v))
}

func (e *recordEncoder) f64(key string, v float64) {
	e.check(e.enc.EncodeString(key))
	e.check(e.enc.EncodeFloat64(v))
}

func (e *recordEncoder) u64(key string, v uint64) {
	e.check(e.enc.EncodeString(key))
	e.check(e.enc.EncodeUint(v))
}

func (e *recordEncoder) done() []byte {
	if e.err != nil {
		// Writing to a bytes.Buffer cannot fail.
		panic(fmt.Sprintf("processor: encode state record: %v", e.err))
	}
	return e.buf.Bytes()
}

func (e *recordEncoder) item(r *itemRecord) []byte {
	e.check(e.start().EncodeMapLen(8))
	e.str("id", r.ID)
	e.bin("v", r.Vector)
	e.f64("p", r.Phase)
	e.f64("c", r.Confidence)
	e.bin("m", r.Meta)
	e.u64("s", r.Seq)
	e.i64("t", r.Time)
	e.i64("x", r.Expires)
	return e.done()
}

func (e *recordEncoder) i64(key string, v int64) {
	e.check(e.enc.EncodeString(key))
	e.check(e.enc.EncodeInt(v))
}

func (e *recordEncoder) filter(r *filterRecord) []byte {
	e.check(e.start().EncodeMapLen(3))
	e.f64("t", r.Threshold)
	e.f64("e", r.EMA)
	e.u64("s", r.Seq)
	return e.done()
}

// config writes a memory's settings as a map with MemoryConfig's tags.
func (e *recordEncoder) config(c *wire.MemoryConfig) {
	e.check(e.enc.EncodeMapLen(7))
	e.u64("dim", uint64(c.Dim))
	e.u64("capacity", uint64(c.Capacity))
	e.str("eviction", c.Eviction)
	e.f64("filter_threshold", c.FilterThreshold)
	e.check(e.enc.EncodeString("filter_adaptive"))
	e.check(e.enc.EncodeBool(c.FilterAdaptive))
	e.check(e.enc.EncodeString("scrub"))
	e.check(e.enc.EncodeBool(c.Scrub))
	e.f64("ttl", c.TTL)
}

// configRecord encodes a memory's settings as the state keeps them.
func (e *recordEncoder) configRecord(c *wire.MemoryConfig) []byte {
	e.start()
	e.config(c)
	return e.done()
}
