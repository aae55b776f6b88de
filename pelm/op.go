package pelm

import "fmt"

// OpKind says what an Op does.
type OpKind uint8

// The operations of Apply. The zero OpKind is invalid, so that a forgotten
// Kind panics instead of silently doing something.
const (
	OpStore    OpKind = iota + 1 // insert or replace an item
	OpRetrieve                   // top-k cosine search within a phase window
	OpForget                     // remove an item by id
)

// String returns "store", "retrieve" or "forget".
func (k OpKind) String() string {
	switch k {
	case OpStore:
		return "store"
	case OpRetrieve:
		return "retrieve"
	case OpForget:
		return "forget"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one operation of a batch given to Apply. The fields each kind reads
// are listed on them; the others are ignored. The preconditions below are the
// caller's to check (the processor validates requests); Apply panics, before
// changing anything, when one is broken.
type Op struct {
	Kind OpKind

	// Time (every kind) is the op's stream time, on any int64 clock (Unix
	// nanoseconds, say). The memory's clock (Memory.Now) is
	// the largest Time seen: an op whose Time is smaller than an earlier
	// op's (stream times step back when a server's clock does) leaves it
	// where it is, so expiry never runs backwards. Before the op takes
	// effect, every item whose Expires is not 0 and at most the clock is
	// removed, as a forget at this op would remove it: earlier retrieves of
	// the batch still see it, this op and later ones do not, it is not
	// counted by Len and never evicted (see Memory.Expired).
	Time int64

	// Expires (store) is the time, on the clock of Time, from which the item
	// is expired: for a ttl T, the store's Time + T. 0 means never; it must
	// not be negative. A store whose Expires is at most the clock (already
	// expired when it arrives) removes the old version of its id, if any,
	// stores nothing and evicts nothing, and its id is listed by Expired.
	// An upsert takes the new op's Expires.
	Expires int64

	// ID names the item (store, forget): 1..MaxIDLen bytes. A store retains
	// the string as given (it is not cloned), so it must not alias a
	// reused buffer (no unsafe byte-to-string views); an upsert keeps the
	// string already stored.
	ID string

	// Vector (store, retrieve) has exactly Dim finite values, not all zero.
	// It is not retained: a store copies it, scaled to unit Euclidean
	// length, into the memory; a retrieve scales a copy.
	Vector []float32

	// Phase (store, retrieve) is in [0, 1].
	Phase float64

	// Confidence (store) is in [0, 1].
	Confidence float64

	// Meta (store) is opaque; a store copies it (one allocation when it is
	// not empty) and retrieves return the copy.
	Meta []byte

	// Tolerance (retrieve): an item matches when
	// |item.Phase − Phase| ≤ Tolerance, computed in float64. Not NaN.
	Tolerance float64

	// TopK (retrieve) is the most matches returned, 1..MaxTopK.
	TopK int

	// MinConfidence (retrieve): only items with Confidence ≥ MinConfidence
	// match. Not NaN.
	MinConfidence float64

	// WithVectors (retrieve) copies each match's stored unit vector into
	// Match.Vector.
	WithVectors bool
}

// Match is one item found by a retrieve.
//
// ID and Meta alias the memory's storage: they stay valid and unchanged
// forever (the memory never writes into a stored meta again) but must not be
// modified. Vector is a copy held in a buffer owned by the Result; it is
// overwritten when that Result is reused by a later Apply.
type Match struct {
	ID string
	// Score is the cosine similarity between the query and the item, in
	// [−1, 1] up to float32 rounding (relative error about 1e−7·√Dim).
	Score      float32
	Phase      float64
	Confidence float64
	Meta       []byte
	// Vector is the stored unit vector (len Dim), only when the retrieve
	// asked WithVectors; nil otherwise.
	Vector []float32
}

// Result is the outcome of one Op. Apply resets every field it writes and
// reuses the backing arrays of Matches and of the vector buffer, so a caller
// that keeps its []Result across Applies allocates nothing in steady state.
type Result struct {
	// Evicted is the id of the item evicted to make room for a store of a
	// new id into a full memory; HasEvicted says whether there was one. An
	// upsert never evicts (its old version is replaced, see Replaced).
	Evicted    string
	HasEvicted bool
	// Replaced (store) says the id existed and its old version was removed.
	Replaced bool
	// Found (forget) says the id existed and was removed.
	Found bool
	// Matches (retrieve) are the best matches, highest Score first and,
	// among equal scores, the more recently stored item first.
	Matches []Match

	vectors []float32 // backing store of Matches[i].Vector
}

// Item is one stored item, as Memory.Items and Memory.Get show it.
type Item struct {
	ID string
	// Vector is the stored unit vector, len Dim. It aliases the memory's
	// rows: valid only until the next Apply, and must not be modified.
	Vector     []float32
	Phase      float64
	Confidence float64
	// Meta is the stored copy; it never changes and must not be modified.
	Meta []byte
	// Order is the item's insertion number: it increases with every store
	// (an upsert takes a new one), so a larger Order means newer.
	Order uint64
	// Time is the memory's clock when the item was stored: the Time of the
	// op that stored it, or the larger Time of an earlier op when the
	// stream time had stepped back. Expires is the store's Op.Expires (0:
	// never). A store op carrying the item with these Time and Expires
	// restores it (see the package documentation, Restoring).
	Time    int64
	Expires int64
}
