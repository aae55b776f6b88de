package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/pelm-dev/pelm/client"
	"github.com/pelm-dev/pelm/wire"
)

// op is a request kind; its name is the last token of the subject.
type op uint8

const (
	opStore op = iota
	opRetrieve
	opProcess
	opForget
	numOps
)

var opNames = [numOps]string{"store", "retrieve", "process", "forget"}

func opByName(s string) (op, bool) {
	for i, n := range opNames {
		if n == s {
			return op(i), true
		}
	}
	return 0, false
}

// moralStore is the moral value of the load's stores: at least 0.90, so
// the filter always accepts and every store stores.
const moralStore = 0.95

// processText scores 0.90 (0.8 + two positive words): always accepted, and
// every process runs the text score, a retrieve and a store.
const processText = "we help and support each other"

// bodiesPerOp is how many distinct bodies the open loop cycles through.
const bodiesPerOp = 512

// scheduleLen is the length of the op order the open loop cycles through.
const scheduleLen = 1024

// workload is every message body of a run, made once.
type workload struct {
	schedule []op                // op of request i is schedule[i%len]
	bodies   [numOps][][]byte    // op's bodies; request i uses bodies[op][i%len]
	preload  [][]byte            // one store per preloaded item
	subjects [][2][numOps]string // per memory, per system, per op
}

// subject is the subject of request i of op o to system sys.
func (w *workload) subject(sys system, o op, i int) string {
	return w.subjects[i%len(w.subjects)][sys][o]
}

func newWorkload(cfg Config) *workload {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	w := &workload{}
	weights := cfg.Mix.weights()
	total := 0
	for _, v := range weights {
		total += v
	}
	// The op order: each op's share of scheduleLen, shuffled.
	w.schedule = make([]op, 0, scheduleLen)
	for o, v := range weights {
		n := (scheduleLen*v + total/2) / total
		for range n {
			w.schedule = append(w.schedule, op(o))
		}
	}
	for len(w.schedule) < scheduleLen { // rounding
		w.schedule = append(w.schedule, w.schedule[len(w.schedule)-1])
	}
	w.schedule = w.schedule[:scheduleLen]
	r.Shuffle(len(w.schedule), func(i, j int) { w.schedule[i], w.schedule[j] = w.schedule[j], w.schedule[i] })

	vec := make([]float32, cfg.Dim)
	for o, v := range weights {
		if v == 0 {
			continue
		}
		w.bodies[o] = make([][]byte, bodiesPerOp)
		for i := range w.bodies[o] {
			w.bodies[o][i] = requestBody(op(o), randomVector(r, vec), phase(r, cfg.Phases), i, cfg.TTL)
		}
	}
	w.preload = make([][]byte, cfg.Preload)
	for i := range w.preload {
		w.preload[i] = requestBody(opStore, randomVector(r, vec), phase(r, cfg.Phases), i, 0)
	}
	for _, m := range cfg.memoryNames() {
		var subj [2][numOps]string
		for s, prefix := range [2]string{cfg.Prefix, cfg.EchoPrefix} {
			for o := range numOps {
				subj[s][o] = prefix + ".req." + m + "." + opNames[o]
			}
		}
		w.subjects = append(w.subjects, subj)
	}
	return w
}

func randomVector(r *rand.Rand, v []float32) []float32 {
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func phase(r *rand.Rand, p Phases) float64 {
	if p == Uniform {
		return r.Float64()
	}
	if r.IntN(2) == 0 {
		return 0.1
	}
	return 0.9
}

// requestBody is the msgpack request of op o, as the Go client encodes
// it. Stores and processes leave out the id (pelm then uses the stream
// sequence, so every store adds an item); forgets name an id that is mostly
// not there.
func requestBody(o op, vec []float32, ph float64, i int, ttl time.Duration) []byte {
	var t *float64
	if ttl > 0 {
		t = client.Float(ttl.Seconds())
	}
	var r client.Request
	switch o {
	case opForget:
		r = client.ForgetRequest{ID: "bench-forget-" + strconv.Itoa(i)}
	case opStore:
		r = client.StoreRequest{Vector: vec, Phase: ph, Moral: client.Float(moralStore), TTL: t}
	case opProcess:
		r = client.ProcessRequest{Vector: vec, Phase: ph, Text: processText, TTL: t}
	case opRetrieve:
		r = client.RetrieveRequest{Vector: vec, Phase: ph}
	}
	b, err := client.Encode(r, wire.Msgpack)
	if err != nil {
		panic(fmt.Sprintf("bench: encode op %d: %v", o, err)) // vectors and numbers always encode
	}
	return b
}

// msgpack writers for the echo's bodies and the tests.

func appendMapLen(b []byte, n int) []byte {
	if n < 16 {
		return append(b, 0x80|byte(n))
	}
	return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
}

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 256:
		b = append(b, 0xd9, byte(n))
	default:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	}
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func appendBinLen(b []byte, n int) []byte {
	switch {
	case n < 256:
		return append(b, 0xc4, byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
}
