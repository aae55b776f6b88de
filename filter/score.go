package filter

import (
	"unicode"
	"unicode/utf8"
)

// Score returns the moral score of text: 0.8 − 0.15·harmful + 0.05·positive,
// clamped to [0, 1], where harmful and positive count every occurrence of a
// listed word. A word is a maximal run of Unicode letters or digits, matched
// case-insensitively under Unicode simple case folding (strings.EqualFold):
// "KILL" and "kill's" count, "killer" does not. The result is an exact
// hundredth, returned as the double nearest to it.
func Score(text string) float64 {
	// Hundredths, so that no float error accumulates across words.
	s := 80
	for i := 0; i < len(text); {
		start := i
		for i < len(text) {
			if c := text[i]; c < utf8.RuneSelf {
				if !isWordByte(c) {
					break
				}
				i++
				continue
			}
			r, n := utf8.DecodeRuneInString(text[i:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				break
			}
			i += n
		}
		if i > start {
			s += wordScore(text[start:i])
		}
		// Skip the separator that ended the word; an invalid byte is one.
		if i < len(text) {
			if text[i] < utf8.RuneSelf {
				i++
			} else {
				_, n := utf8.DecodeRuneInString(text[i:])
				i += n
			}
		}
	}
	return float64(min(max(s, 0), 100)) / 100
}

// ASCII word bytes (0-9, A-Z, a-z) as bitmasks over bytes 0-63 and 64-127.
const (
	wordLo = 0x03ff_0000_0000_0000
	wordHi = 0x07ff_fffe_07ff_fffe
)

func isWordByte(c byte) bool {
	if c < 64 {
		return wordLo>>c&1 != 0
	}
	return wordHi>>(c-64)&1 != 0
}

// maxWordLen is the length of the longest listed word, "understanding".
const maxWordLen = 13

// wordScore returns the contribution of one word in hundredths.
func wordScore(w string) int {
	// Fold into a stack buffer; a switch on the converted string compiles
	// to comparisons without allocating.
	var buf [maxWordLen]byte
	n := 0
	for i := 0; i < len(w); n++ {
		if n == len(buf) {
			return 0
		}
		if c := w[i]; c < utf8.RuneSelf {
			buf[n] = c | 0x20 // lowercases letters, keeps digits
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(w[i:])
		switch r {
		case '\u212A': // KELVIN SIGN folds to k
			buf[n] = 'k'
		case '\u017F': // LATIN SMALL LETTER LONG S folds to s
			buf[n] = 's'
		default:
			return 0 // folds to no ASCII letter, so to no listed word
		}
		i += size
	}
	switch string(buf[:n]) {
	case "hate", "violence", "attack", "kill", "destroy", "harm", "abuse", "exploit",
		"discriminate", "racist", "sexist", "terrorist", "weapon", "bomb", "murder":
		return -15
	case "help", "support", "care", "love", "kind", "respect", "ethical", "fair",
		"honest", "trust", "safe", "protect", "collaborate", "peace", "understanding":
		return 5
	}
	return 0
}
