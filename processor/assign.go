package processor

import (
	"hash/fnv"
	"slices"
	"strconv"
)

// assign gives each of n partitions to one of the members: every member
// gets at most ceil(n/len(members)) of them, each partition goes to the
// member that ranks highest for it (rendezvous hashing) among those with
// room. Every process computes the same answer from the same members, and
// a member joining or leaving moves few partitions. It returns, by
// partition, the member's name; nil when there are no members.
func assign(n int, members []string) []string {
	if len(members) == 0 {
		return nil
	}
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	room := (n + len(ms) - 1) / len(ms)
	load := make(map[string]int, len(ms))
	out := make([]string, n)
	ranked := make([]string, len(ms))
	for k := range n {
		copy(ranked, ms)
		slices.SortFunc(ranked, func(a, b string) int {
			ha, hb := rank(k, a), rank(k, b)
			switch {
			case ha > hb:
				return -1
			case ha < hb:
				return 1
			}
			return 0
		})
		for _, m := range ranked {
			if load[m] < room {
				out[k] = m
				load[m]++
				break
			}
		}
	}
	return out
}

// rank is a member's weight for a partition.
func rank(k int, member string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(strconv.Itoa(k)))
	return h.Sum64()
}
