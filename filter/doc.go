// Package filter implements the moral filter and the text score of
// PROTOCOL.md ("Filter", "Text score").
//
// A Filter holds a threshold t in [MinThreshold, MaxThreshold] and an
// exponential moving average ema of its acceptances. A value ≥ 0.90 is always
// accepted, a value < 0.30 always rejected, any other value accepted when
// value ≥ t. After every decision
//
//	ema = 0.1·(1 if accepted else 0) + 0.9·ema   (ema starts at 0.5)
//
// and, unless the filter is Fixed, t moves one Step up when ema − 0.5 > 0.05
// and one Step down when ema − 0.5 < −0.05, clamped to [0.30, 0.90]. A fixed
// filter tracks ema too (for stats) but never moves t.
//
// # Decimal semantics
//
// The protocol is written in decimals, and float64 rounding must not change a
// decision against exact decimal arithmetic. Hence:
//   - t is rounded to the 1e-9 grid after every step (math.Round(t*1e9)/1e9),
//     which yields the same double as the decimal literal: 0.5+0.05+0.05 is
//     0.6, not 0.6000000000000001.
//   - the dead band is compared with a slack of 1e-9: t moves up only when
//     ema−0.5 > 0.05+1e-9 and down only when ema−0.5 < −0.05−1e-9. One
//     acceptance from ema 0.5 gives ema 0.55 exactly in decimal, which must not
//     move t, although in float64 it is 0.55000000000000004.
//   - text scores are not rounded: Score computes the ancestor's float64
//     formula (see Score).
//   - values are compared with t as plain value >= t.
//
// The float64 ema drifts from the exact decimal by a few ulps at most (the
// update is a contraction), far inside the slack. The slack itself is the one
// departure from exact arithmetic: an exact ema that lies within 1e-9 of a
// band edge without touching it is treated as on the edge. Such an ema needs
// a long, specific history and is accepted as the price of bounded state.
//
// # Concurrency and allocation
//
// A Filter is not safe for concurrent use: it belongs to the one goroutine
// that owns its memory, and decisions must be made in stream order. Score is
// a pure function, safe for concurrent use. Decide and Score allocate
// nothing.
package filter
