package pelm

import "unsafe"

// Byte accounting, for a server that holds its memories within a budget
// (PROTOCOL.md, Budget). The two functions count the same things:
//
//   - the phase buckets: per row allocated, the float32 row (Dim padded to
//     a multiple of 4), its bfloat16 copy where the first pass runs (Dim
//     padded to a multiple of 32, 2 bytes a value) and its 32-byte rowInfo;
//     plus the allocator's rounding of each bucket's allocation;
//   - per handle: its slot, id string header, meta slice header and free
//     list entry; per live item, its entries in the heaps and in the id map;
//   - the Memory value itself.
//
// They leave out the batch scratch (queries, top-k lists and tiles, which
// grow to the largest batch and are kept: about 2·B·Dim·4 bytes, plus
// B·Dim·2 with the first pass, plus Σ TopK·16 per goroutine, for a batch of
// B retrieves) and the bytes of the ids and metas themselves, which the
// caller knows (Bytes adds their lengths).
const (
	rowInfoBytes = int64(unsafe.Sizeof(rowInfo{}))
	// handleBytes: slot, ids[s] and meta[s] headers, a free list entry.
	handleBytes    = int64(unsafe.Sizeof(slot{})) + int64(unsafe.Sizeof("")) + int64(unsafe.Sizeof([]byte(nil))) + 4
	heapEntryBytes = 4
	// mapEntryBytes bounds the id map's bytes per entry: a slot of the
	// map's table holds a string header and an int32 (24 bytes with
	// padding) and a control byte; a table is at most 7/8 full and at
	// least half that just after it grows (16/7 slots an entry), so
	// 25·16/7 ≈ 57.2 bytes, plus the directory and table headers.
	mapEntryBytes = 58
	// pageBytes is the rounding of a large allocation (and bounds that of
	// a small one): one per bucket.
	pageBytes = 8192
)

// rowBytes returns the bytes of one row of a bucket: float32 row, bfloat16
// copy (stride16 is 0 without the first pass) and rowInfo.
func rowBytes(stride, stride16 int) int64 {
	return int64(stride)*4 + int64(stride16)*2 + rowInfoBytes
}

// BytesAtCapacity returns an upper estimate of the bytes a Memory of
// configuration c holds between batches once full (Capacity items), for
// vectors and bookkeeping, on this CPU (the bfloat16 copy counts only where
// the first pass runs), excluding the ids' and metas' own bytes and the batch
// scratch (see Memory.Bytes). It is the sum of:
//
//   - rows: at most Capacity + Capacity/10 + 64·16 rows allocated (the
//     growth policy's bound on the buckets' spare room, slots.go), each of
//     ⌈Dim/4⌉·16 + ⌈Dim/32⌉·64 (first pass only) + 32 bytes, plus 8 KiB per
//     bucket for the allocator's rounding;
//   - handles: at most Capacity·5/4 + 256 (append's growth), each of 108
//     bytes (slot, id and meta headers, free list entry);
//   - heaps: the expiry heap and, with LowestConfidence, the confidence
//     heap, at most Capacity·5/4 + 256 entries of 4 bytes each;
//   - the id map: Capacity entries of at most 58 bytes.
//
// At Capacity 20,000 (Dim 384 or 1536) it is 1.07 to 1.13 times the bytes
// TestBytesAtCapacity measures (HeapAlloc growth, ids and metas added to
// both) after filling a memory and after a churn; the 64·16 spare rows make
// it looser for small capacities (1.28 × at 5,000 items of Dim 384).
// A batch of B stores may hold up to B more rows and handles until it ends.
// c must be valid (see Validate); zero fields take their defaults.
func (c Config) BytesAtCapacity() int64 {
	c = c.withDefaults()
	stride, stride16 := strides(c.Dim)
	n := int64(c.Capacity)
	rows := n + n/trimDiv + phaseBuckets*trimMinRows
	handles := n + n/4 + 256
	heaps := int64(1)
	if c.Eviction == LowestConfidence {
		heaps = 2
	}
	return rows*rowBytes(stride, stride16) + phaseBuckets*pageBytes +
		handles*handleBytes + heaps*handles*heapEntryBytes +
		n*mapEntryBytes + int64(unsafe.Sizeof(Memory{}))
}

// strides returns the float32 and bfloat16 row lengths of a memory of
// dimension dim on this CPU (stride16 is 0 without the first pass).
func strides(dim int) (stride, stride16 int) {
	stride = (dim + 3) &^ 3
	if dim >= minDimBF16 && cpuBF16() {
		stride16 = (dim + 31) &^ 31
	}
	return stride, stride16
}

// Bytes returns the bytes the memory holds now by the accounting of
// Config.BytesAtCapacity, from the capacities actually allocated (the id
// map from the most ids it ever held, since a Go map does not shrink), plus
// the lengths of the ids and metas held. It leaves out the batch scratch.
// O(1) besides a pass over the 64 buckets.
func (m *Memory) Bytes() int64 {
	var b int64
	rb := rowBytes(m.stride, m.stride16)
	for i := range m.buckets {
		if c := int64(cap(m.buckets[i].info)); c > 0 {
			b += roundAlloc(c * rb)
		}
	}
	b += int64(cap(m.slots))*int64(unsafe.Sizeof(slot{})) +
		int64(cap(m.ids))*int64(unsafe.Sizeof("")) +
		int64(cap(m.meta))*int64(unsafe.Sizeof([]byte(nil))) +
		int64(cap(m.free))*4
	for _, h := range m.heaps {
		b += int64(cap(h)) * heapEntryBytes
	}
	b += int64(m.peakIndex)*mapEntryBytes + int64(unsafe.Sizeof(Memory{}))
	return b + m.idMeta
}

// roundAlloc returns an upper estimate of the bytes the allocator reserves
// for a request of n bytes: a large one is rounded up to whole pages, a
// small one to its size class (at most 1/8 more).
func roundAlloc(n int64) int64 {
	if n > 32<<10 {
		return (n + pageBytes - 1) &^ (pageBytes - 1)
	}
	return n + n/8
}
