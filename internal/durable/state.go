package durable

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pelm-dev/pelm/wire"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"
)

// Memory contents live in JetStream itself, in the stream PELM_STATE, one
// subject per item (the stream keeps one message per subject, so it compacts
// itself and an R3 stream replicates it with no code of ours):
//
//	<prefix>.state.m.<memory>.i.<base64url(id)>   an item, or a tombstone
//	<prefix>.state.m.<memory>.f                   the filter's threshold and ema
//	<prefix>.state.m.<memory>.c                   the memory's settings
//	<prefix>.state.commit                         the last commit's marker and journal mark
//
// In front of it is the journal (journal.go): a batch is durable, and its
// requests may be acknowledged, once its one journal record is stored. The
// record holds every effectful request of the batch with its effects and
// its result, so that a redelivery republishes that result instead of
// applying the request twice. Behind it, the items' changes are
// materialised into this layout by atomic batches (materialize.go), each
// commit recording the journal mark it reaches; a restore reads this
// layout, then replays the journal past that mark.
//
// Items are written in insertion order, so the stream's order of the
// surviving messages is the memory's order: a restore replays them as
// stores and gets the same items, the same order and the same eviction
// future. A removal writes a tombstone with a short TTL: it displaces the
// item's message, then expires.
const (
	StateStream = "PELM_STATE"

	hdrOp        = "Pelm-Op"
	hdrTTL       = "Nats-TTL"
	hdrBatchID   = "Nats-Batch-Id"
	hdrBatchSeq  = "Nats-Batch-Sequence"
	hdrCommit    = "Nats-Batch-Commit"
	opDelete     = "del"
	tombstoneTTL = "60s"

	// maxAtomicBatch is nats-server's default limit of messages in one
	// atomic batch; commits are split below it at request boundaries.
	maxAtomicBatch = 1000
)

func stateStreamConfig(prefix string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               StateStream,
		Subjects:           []string{prefix + ".state.>"},
		Retention:          jetstream.LimitsPolicy,
		Storage:            jetstream.FileStorage,
		MaxMsgsPerSubject:  1,
		AllowAtomicPublish: true,
		AllowMsgTTL:        true,
		Discard:            jetstream.DiscardOld,
	}
}

var idEncoding = base64.RawURLEncoding

// stateSubjects builds and parses the state stream's subjects.
type stateSubjects struct{ base string } // "<prefix>.state."

func (s stateSubjects) item(mem, id string) string {
	return s.base + "m." + mem + ".i." + idEncoding.EncodeToString([]byte(id))
}
func (s stateSubjects) filter(mem string) string { return s.base + "m." + mem + ".f" }
func (s stateSubjects) config(mem string) string { return s.base + "m." + mem + ".c" }
func (s stateSubjects) memory(mem string) string { return s.base + "m." + mem + ".>" }
func (s stateSubjects) legacyDone() string       { return s.base + "m.*.d.>" }

// parse splits a state subject into the memory, the kind ('i', 'f', 'c')
// and the key; ok is false for anything else (the commit marker included).
func (s stateSubjects) parse(subject string) (mem string, kind byte, key string, ok bool) {
	rest, found := strings.CutPrefix(subject, s.base+"m.")
	if !found {
		return "", 0, "", false
	}
	mem, rest, found = strings.Cut(rest, ".")
	if !found || !wire.ValidMemoryName(mem) || rest == "" {
		return "", 0, "", false
	}
	kindTok, key, _ := strings.Cut(rest, ".")
	if len(kindTok) != 1 {
		return "", 0, "", false
	}
	return mem, kindTok[0], key, true
}

// itemRecord is a stored item as persisted: the vector exactly as the
// request sent it (a restore normalises it again, bit for bit the same).
type itemRecord struct {
	ID         string  `msgpack:"id"`
	Vector     []byte  `msgpack:"v"` // little-endian float32
	Phase      float64 `msgpack:"p"`
	Confidence float64 `msgpack:"c"`
	Meta       []byte  `msgpack:"m"` // tagged, see metaTag
	Seq        uint64  `msgpack:"s"` // the request that stored it
	Time       int64   `msgpack:"t"` // the memory's clock when stored (pelm.Item.Time), Unix ns
	Expires    int64   `msgpack:"x"` // when it expires, Unix ns; 0: never
}

func appendVector(dst []byte, v []float32) []byte {
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
	}
	return dst
}

// vectorFrom decodes little-endian float32 (a trailing partial value is
// dropped; the memory then refuses the vector's dimension).
func vectorFrom(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// filterRecord is a memory's filter state.
type filterRecord struct {
	Threshold float64 `msgpack:"t"`
	EMA       float64 `msgpack:"e"`
	Seq       uint64  `msgpack:"s"` // the last request it decided
}

func encodeRecord(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("durable: encode state record: %v", err)) // plain structs always encode
	}
	return b
}

// stateTimeout bounds one commit; apiTimeout one JetStream API call.
const (
	stateTimeout = 10 * time.Second
	apiTimeout   = 5 * time.Second
)
