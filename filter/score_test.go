package filter

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The wanted scores are what the generator's score() in
// shared/anchors/moral_filter_golden.py returns (Python 3.11), written as
// Python prints them. They are literals, not expressions: Go evaluates a
// constant expression such as 0.8+0.05 exactly, which is not the float64 sum.
func TestScore(t *testing.T) {
	tests := []struct {
		name string
		text string
		want float64
	}{
		{name: "empty", text: "", want: 0.8},
		{name: "blank", text: " \t\n", want: 0.8},
		{name: "neutral", text: "the cat sat on the mat", want: 0.8},
		{name: "one harmful", text: "they will attack at dawn", want: 0.65},
		{name: "one positive", text: "please help", want: 0.8500000000000001},
		{name: "mixed", text: "help them, do not harm them", want: 0.7000000000000001},
		{name: "upper and mixed case", text: "KILL Kill kIlL", want: 0.3500000000000001},
		{name: "punctuation splits words", text: "kill's (bomb)! love,peace;trust.", want: 0.65},
		{name: "no substrings", text: "killer bombastic careful unkind helpful Pharmacy harmless kindness peaceful", want: 0.8},
		{name: "hyphen splits", text: "self-harm trust-worthy", want: 0.7000000000000001},
		{name: "exclamation", text: "HELP!", want: 0.8500000000000001},
		{name: "parentheses", text: "(care)", want: 0.8500000000000001},
		{name: "digits join words", text: "kill2 2kill kill", want: 0.65},
		{name: "underscore joins words", text: "kill_bomb _safe care_ safe", want: 0.8500000000000001},
		{name: "repeated words count each time", text: "care care care care", want: 1},
		{name: "clamped at 1", text: strings.Repeat("love ", 10), want: 1},
		{name: "clamped at 0", text: strings.Repeat("murder ", 6), want: 0},
		{name: "clamping is after the sum", text: strings.Repeat("hate ", 6) + strings.Repeat("kind ", 10), want: 0.40000000000000013},
		{name: "order of rounding", text: "hate love love love", want: 0.8},
		{name: "all harmful once", text: "hate violence attack kill destroy harm abuse exploit discriminate racist sexist terrorist weapon bomb murder", want: 0},
		{name: "all positive once", text: "help support care love kind respect ethical fair honest trust safe protect collaborate peace understanding", want: 1},
		{name: "letters glue across scripts", text: "killé weaponся", want: 0.8},
		{name: "numbers of other scripts glue", text: "kill\u00b2 \u2163care \u0663bomb", want: 0.8},
		{name: "non-ASCII separators", text: "kill—bomb…peace « trust »", want: 0.6},
		{name: "non-ASCII neighbours", text: "日本 kill 日本", want: 0.65},
		{name: "kelvin sign stands for k", text: "\u212Aill", want: 0.65},
		{name: "long s stands for s", text: "\u017Fafe", want: 0.8500000000000001},
		{name: "dotted capital I stands for i", text: "K\u0130LL", want: 0.65},
		{name: "dotless i stands for i", text: "k\u0131ll", want: 0.65},
		{name: "other look-alikes do not", text: "\uff4bill k\u0456ll", want: 0.8},
		{name: "combining mark ends a word", text: "kill\u0301", want: 0.65},
		{name: "invalid UTF-8 separates", text: "kill\xffbomb", want: 0.5}, // as U+FFFD does in Python
		{name: "tabs and newlines", text: "\tkill\nlove\r\n", want: 0.7000000000000001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Score(tt.text); got != tt.want {
				t.Fatalf("Score(%q) = %v (%#016x), want %v (%#016x)",
					tt.text, got, math.Float64bits(got), tt.want, math.Float64bits(tt.want))
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

// isWordRune is Python's \w on str: letters, numbers and the underscore.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || r == '_'
}

// matchesLetter reports whether Python's re, under IGNORECASE, matches the
// rune r to the lowercase ASCII letter x: r lowercases to x, or r shares x's
// uppercase (Python's extra cases, such as ı and ſ).
func matchesLetter(r, x rune) bool {
	return unicode.ToLower(r) == x || unicode.ToUpper(r) == unicode.ToUpper(x)
}

func equalIgnoreCase(w, listed string) bool {
	if utf8.RuneCountInString(w) != len(listed) {
		return false
	}
	i := 0
	for _, r := range w {
		if !matchesLetter(r, rune(listed[i])) {
			return false
		}
		i++
	}
	return true
}

// refScore is the generator's score() written plainly: split into words,
// count the listed ones, then the formula in float64.
func refScore(text string) float64 {
	h, p := 0, 0
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !isWordRune(r) }) {
		for _, x := range harmfulWords {
			if equalIgnoreCase(w, x) {
				h++
			}
		}
		for _, x := range positiveWords {
			if equalIgnoreCase(w, x) {
				p++
			}
		}
	}
	s := 0.8 - float64(float64(h)*0.15) + float64(float64(p)*0.05)
	return max(0.0, min(1.0, s))
}

func TestWordLists(t *testing.T) {
	for _, tt := range []struct {
		words []string
		want  kind
	}{{harmfulWords, harmful}, {positiveWords, positive}} {
		for _, w := range tt.words {
			for _, v := range []string{w, strings.ToUpper(w), strings.ToTitle(w[:1]) + w[1:]} {
				if got := wordKind(v); got != tt.want {
					t.Errorf("wordKind(%q) = %d, want %d", v, got, tt.want)
				}
			}
		}
	}
}

// TestLettersToASCII checks the assumption of wordKind: the only non-ASCII
// runes that Python's re matches to an ASCII letter under IGNORECASE are
// U+0130 and U+0131 (i), U+212A (k) and U+017F (s). Python 3.11 agrees, over
// every code point:
//
//	[(l, hex(c)) for l in string.ascii_lowercase for c in range(128, 0x110000)
//	 if re.fullmatch(l, chr(c), re.I)]
func TestLettersToASCII(t *testing.T) {
	want := map[rune]rune{'\u0130': 'i', '\u0131': 'i', '\u212A': 'k', '\u017F': 's'}
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if unicode.ToLower(r) >= utf8.RuneSelf && unicode.ToUpper(r) >= utf8.RuneSelf {
			if x, ok := want[r]; ok {
				t.Errorf("%U matches no ASCII letter, wordKind assumes %q", r, x)
			}
			continue // it cannot match one
		}
		for x := 'a'; x <= 'z'; x++ {
			if matchesLetter(r, x) != (want[r] == x) {
				t.Errorf("%U matches %q: %v, wordKind assumes %v", r, x, matchesLetter(r, x), want[r] == x)
			}
		}
	}
}

// TestScoreReference compares Score with refScore on random texts built
// from listed words, near misses, case variants and separators.
func TestScoreReference(t *testing.T) {
	parts := []string{" ", ", ", "'", "-", "\n", "—", "日本", "é", "\xff", "2", "_", "\u00b2", "\u0301",
		"kill", "KILL", "Kill", "killer", "\u212Aill", "\u017Fafe", "K\u0130LL", "k\u0131ll", "care", "CARE",
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
		for range r.IntN(16) {
			b.WriteString(parts[r.IntN(len(parts))])
		}
		text := b.String()
		if got, want := Score(text), refScore(text); got != want {
			t.Fatalf("case %d: Score(%q) = %v, reference %v", i, text, got, want)
		}
	}
}

// TestScoreCounts checks every count of words up to clamping both ways
// against the formula, product by product.
func TestScoreCounts(t *testing.T) {
	for h := range 8 {
		for p := range 22 {
			text := strings.Repeat("bomb ", h) + strings.Repeat("fair ", p)
			want := max(0, min(1, 0.8-float64(float64(h)*0.15)+float64(float64(p)*0.05)))
			if got := Score(text); got != want {
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
