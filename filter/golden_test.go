package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// goldenFile is the ancestor's decisions, written by
// shared/anchors/moral_filter_golden.py. The full file lives in shared/,
// beside the checkout: from this package's directory that is ../../shared
// (the main checkout is /work/main, shared/ is /work/shared; CI lays out
// <clone>/../shared the same way). PELM_ANCHORS names another directory that
// holds it, e.g. PELM_ANCHORS=/work/shared/anchors for a worktree elsewhere.
// testdata/golden_small.jsonl is its first six sequences (seeds 0 to 5: one
// of each kind, texts among them), so that the package checks itself without
// shared/.
const goldenFile = "moral_filter_golden.jsonl"

// TestGolden replays every sequence of the golden files and requires every
// step to be the ancestor's bit for bit: accepted, threshold used, ema after
// and threshold after, from the sequence's start threshold.
func TestGolden(t *testing.T) {
	t.Run("small", func(t *testing.T) {
		checkGolden(t, filepath.Join("testdata", "golden_small.jsonl"))
	})
	t.Run("anchors", func(t *testing.T) {
		path := filepath.Join("..", "..", "shared", "anchors", goldenFile)
		dir, set := os.LookupEnv("PELM_ANCHORS")
		if set {
			path = filepath.Join(dir, goldenFile)
		}
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !set {
			t.Skipf("golden file %s absent (shared/ is not beside the checkout); set PELM_ANCHORS to the directory that holds it", path)
		}
		checkGolden(t, path)
	})
}

// goldenSeq is one line of a golden file: steps are [input, accepted,
// threshold_used, ema_after, threshold_after], input a moral value or a text.
type goldenSeq struct {
	Seed  int                 `json:"seed"`
	Start float64             `json:"start"`
	Steps [][]json.RawMessage `json:"steps"`
}

type goldenStep struct {
	accepted              bool
	used, ema, thresAfter float64
}

func checkGolden(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	steps := 0
	for n, line := range lines {
		var seq goldenSeq
		if err := json.Unmarshal(line, &seq); err != nil {
			t.Fatalf("%s:%d: %v", path, n+1, err)
		}
		if len(seq.Steps) == 0 {
			t.Fatalf("%s:%d: seed %d has no steps", path, n+1, seq.Seed)
		}
		f, err := New(Config{Threshold: seq.Start})
		if err != nil {
			t.Fatalf("%s:%d: seed %d: %v", path, n+1, seq.Seed, err)
		}
		for i, raw := range seq.Steps {
			input, want, err := parseStep(raw)
			if err != nil {
				t.Fatalf("%s:%d: seed %d step %d: %v", path, n+1, seq.Seed, i, err)
			}
			var got goldenStep
			got.accepted, got.used = f.Decide(input)
			s := f.State()
			got.ema, got.thresAfter = s.EMA, s.Threshold
			if got != want {
				t.Errorf("seed %d step %d input %s (value %s):\n"+
					"  accepted        got %v, want %v\n"+
					"  threshold used  got %s, want %s\n"+
					"  ema after       got %s, want %s\n"+
					"  threshold after got %s, want %s",
					seq.Seed, i, raw[0], bitsOf(input), got.accepted, want.accepted,
					bitsOf(got.used), bitsOf(want.used), bitsOf(got.ema), bitsOf(want.ema),
					bitsOf(got.thresAfter), bitsOf(want.thresAfter))
				break // the later steps of this sequence follow from this one
			}
			steps++
		}
	}
	t.Logf("%s: %d sequences, %d steps match", path, len(lines), steps)
}

// parseStep decodes a step, scoring a text input with Score. The JSON floats
// are Python's repr, which encoding/json parses back to the same double.
func parseStep(raw []json.RawMessage) (input float64, want goldenStep, err error) {
	if len(raw) != 5 {
		return 0, want, fmt.Errorf("%d fields, want 5", len(raw))
	}
	var text string
	if err := json.Unmarshal(raw[0], &text); err == nil {
		input = Score(text)
	} else if err := json.Unmarshal(raw[0], &input); err != nil {
		return 0, want, fmt.Errorf("input %s: %w", raw[0], err)
	}
	for i, dst := range []any{&want.accepted, &want.used, &want.ema, &want.thresAfter} {
		if err := json.Unmarshal(raw[i+1], dst); err != nil {
			return 0, want, fmt.Errorf("field %d: %w", i+1, err)
		}
	}
	return input, want, nil
}

func bitsOf(x float64) string {
	return fmt.Sprintf("%v (%#016x)", x, math.Float64bits(x))
}
