package filter

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestScore(t *testing.T) {
	tests := []struct {
		name string
		text string
		want float64
	}{
		{name: "empty", text: "", want: 0.8},
		{name: "neutral", text: "the cat sat on the mat", want: 0.8},
		{name: "one harmful", text: "they will attack at dawn", want: 0.65},
		{name: "one positive", text: "please help", want: 0.85},
		{name: "mixed", text: "help them, do not harm them", want: 0.7},
		{name: "upper and mixed case", text: "KILL Kill kIlL", want: 0.35},
		{name: "punctuation splits words", text: "kill's (bomb)! love,peace;trust.", want: 0.65},
		{name: "no substrings", text: "killer bombastic careful unkind helpful", want: 0.8},
		{name: "digits join words", text: "kill2 2kill kill", want: 0.65},
		{name: "underscore and hyphen split", text: "kill_bomb safe-care", want: 0.6},
		{name: "repeated words count each time", text: "care care care care", want: 1},
		{name: "clamped at 1", text: strings.Repeat("love ", 10), want: 1},
		{name: "clamped at 0", text: strings.Repeat("murder ", 6), want: 0},
		{name: "clamping is after the sum", text: strings.Repeat("hate ", 6) + strings.Repeat("kind ", 10), want: 0.4},
		{name: "exact hundredths", text: "hate love love love", want: 0.8},
		{name: "all harmful once", text: "hate violence attack kill destroy harm abuse exploit discriminate racist sexist terrorist weapon bomb murder", want: 0},
		{name: "all positive once", text: "help support care love kind respect ethical fair honest trust safe protect collaborate peace understanding", want: 1},
		{name: "letters glue across scripts", text: "killé weaponся", want: 0.8},
		{name: "non-ASCII separators", text: "kill—bomb…peace « trust »", want: 0.6},
		{name: "non-ASCII neighbours", text: "日本 kill 日本", want: 0.65},
		{name: "kelvin sign folds to k", text: "\u212Aill", want: 0.65},
		{name: "long s folds to s", text: "\u017Fafe", want: 0.85},
		{name: "dotted capital I does not fold", text: "K\u0130LL", want: 0.8},
		{name: "combining mark ends a word", text: "kill\u0301", want: 0.65},
		{name: "invalid UTF-8 separates", text: "kill\xffbomb", want: 0.5},
		{name: "tabs and newlines", text: "\tkill\nlove\r\n", want: 0.7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Score(tt.text); got != tt.want {
				t.Fatalf("Score(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

// The protocol's lists, kept apart from the switch in score.go.
var (
	harmfulWords = []string{"hate", "violence", "attack", "kill", "destroy", "harm", "abuse", "exploit",
		"discriminate", "racist", "sexist", "terrorist", "weapon", "bomb", "murder"}
	positiveWords = []string{"help", "support", "care", "love", "kind", "respect", "ethical", "fair",
		"honest", "trust", "safe", "protect", "collaborate", "peace", "understanding"}
)

// refScore is the text score written plainly: split, EqualFold, count.
func refScore(text string) float64 {
	h, p := 0, 0
	words := strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, w := range words {
		for _, x := range harmfulWords {
			if strings.EqualFold(w, x) {
				h++
			}
		}
		for _, x := range positiveWords {
			if strings.EqualFold(w, x) {
				p++
			}
		}
	}
	return float64(min(max(80-15*h+5*p, 0), 100)) / 100
}

func TestWordLists(t *testing.T) {
	for _, w := range harmfulWords {
		for _, v := range []string{w, strings.ToUpper(w), strings.ToTitle(w[:1]) + w[1:]} {
			if got := wordScore(v); got != -15 {
				t.Errorf("wordScore(%q) = %d, want -15", v, got)
			}
		}
	}
	for _, w := range positiveWords {
		for _, v := range []string{w, strings.ToUpper(w), strings.ToTitle(w[:1]) + w[1:]} {
			if got := wordScore(v); got != 5 {
				t.Errorf("wordScore(%q) = %d, want 5", v, got)
			}
		}
	}
}

// TestFoldToASCII checks the assumption of wordScore: the only non-ASCII
// runes that simple-fold to an ASCII letter are KELVIN SIGN and LONG S.
func TestFoldToASCII(t *testing.T) {
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf && r != '\u212A' && r != '\u017F' {
				t.Errorf("%U folds to %q, unhandled by wordScore", r, f)
			}
		}
	}
}

// TestScoreReference compares Score with refScore on random texts built
// from listed words, near misses, case variants and separators.
func TestScoreReference(t *testing.T) {
	parts := []string{" ", ", ", "'", "-", "\n", "—", "日本", "é", "\xff", "2", "_",
		"kill", "KILL", "Kill", "killer", "\u212Aill", "\u017Fafe", "K\u0130LL", "care", "CARE",
		"understanding", "Understanding", "UNDERSTANDINGS", "discriminate", "peace", "bomb", "s"}
	for _, w := range harmfulWords {
		parts = append(parts, w, strings.ToUpper(w))
	}
	for _, w := range positiveWords {
		parts = append(parts, w, strings.ToUpper(w))
	}
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for i := range 20000 {
		b.Reset()
		for range r.IntN(12) {
			b.WriteString(parts[r.IntN(len(parts))])
		}
		text := b.String()
		if got, want := Score(text), refScore(text); got != want {
			t.Fatalf("case %d: Score(%q) = %v, reference %v", i, text, got, want)
		}
	}
}

// TestScoreGrid checks that scores are the same doubles as the decimal
// literals rounded to the 1e-9 grid.
func TestScoreGrid(t *testing.T) {
	for h := range 8 {
		for p := range 8 {
			text := strings.Repeat("bomb ", h) + strings.Repeat("fair ", p)
			got := Score(text)
			want := round9(min(max(0.8-0.15*float64(h)+0.05*float64(p), 0), 1))
			if got != want {
				t.Fatalf("h=%d p=%d: Score = %v, want %v", h, p, got, want)
			}
		}
	}
}

var scoreText = "We will help and support each other; we respect the KIND, honest and fair. " +
	"Do not attack, do not destroy, never harm — Ünïcödé words and \u212Aill too. " +
	strings.Repeat("ordinary words of a longer message with nothing in particular ", 8)

func TestScoreAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Score(scoreText) }); n != 0 {
		t.Fatalf("Score allocates %v times per call", n)
	}
}

func BenchmarkScore(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(scoreText)))
	for b.Loop() {
		Score(scoreText)
	}
}
