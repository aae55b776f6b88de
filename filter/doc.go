// Package filter implements the moral filter and the text score of
// PROTOCOL.md ("Filter", "Text score"); it decides exactly as the ancestor
// (mlsdm's MoralFilterV2 and compute_moral_value) does.
//
// A Filter holds a threshold t in [MinThreshold, MaxThreshold], starting at
// the configured threshold (DefaultThreshold, 0.50, unless set), and an
// exponential moving average ema of its acceptances, starting at 0.5.
// Decide(v) computes, in this order:
//
//	accepted = v ≥ 0.90 or (v ≥ 0.30 and v ≥ t)
//	ema      = 0.1·s + 0.9·ema             (s = 1 if accepted, else 0)
//	err      = ema − 0.5
//	t        = min(t + 0.05, 0.90)         if err > 0.05
//	t        = max(t − 0.05, 0.30)         if err < −0.05
//
// A Fixed filter updates ema too (for stats) but never moves t. Score(text)
// computes max(0, min(1, 0.8 − (h·0.15) + (p·0.05))), where h and p count the
// harmful and positive words of text, as Python's re counts whole words (see
// Score).
//
// # Arithmetic
//
// The arithmetic is the ancestor's (Python's) bit for bit: float64, each
// operation rounded to float64, in the order written above (left to right
// within a line), with no fused multiply-add. 0.9 is the double nearest 0.9,
// which is also what Python computes for the ancestor's 1.0 − 0.1. Nothing is
// rounded to decimals and there is no slack at the dead band.
//
// Go may fuse x*y + z into one instruction that skips the rounding of the
// product (it does on arm64, loong64, ppc64, ppc64le, riscv64, s390x, and
// amd64 at GOAMD64=v3). So every product is written as an explicit conversion,
// float64(x*y): the Go spec says that an explicit conversion rounds to the
// type's precision and prevents that fusion. The results are the same on
// every platform.
//
// The boundary example: the first acceptance from the start state gives
// ema = 0.1 + 0.9·0.5 = 0.1 + 0.45 = 0.55000000000000004 (17 significant
// digits; it is the double nearest 0.55, which Go's shortest format prints as
// 0.55). Then ema − 0.5 = 0.050000000000000044 > 0.05, so the threshold
// rises from 0.50 to 0.50 + 0.05 = 0.55000000000000004, again the double
// nearest 0.55. In exact decimals ema − 0.5 would be 0.05, inside the dead
// band; the ancestor raises t, and so does Decide. Further steps leave the
// hundredths as the ancestor's do: from 0.50, steps up give
// 0.6000000000000001, 0.6500000000000001 and 0.7000000000000002 (at which a
// value of 0.7 is rejected), and a step down from 0.6000000000000001 gives
// 0.55 again. State and SetState carry t and ema bit for bit.
//
// shared/anchors/moral_filter_golden.jsonl (beside the checkout; its
// generator moral_filter_golden.py says how it was computed) holds 19,200 of
// the ancestor's decisions. TestGolden requires every one, and the six
// sequences copied into testdata/golden_small.jsonl, to match bit for bit;
// the environment variable PELM_ANCHORS names another directory holding the
// file.
//
// # Concurrency and allocation
//
// A Filter is not safe for concurrent use: it belongs to the one goroutine
// that owns its memory, and decisions must be made in stream order. Score is
// a pure function, safe for concurrent use. Decide and Score allocate
// nothing.
package filter
