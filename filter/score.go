package filter

import (
	"unicode"
	"unicode/utf8"
)

// Score returns the moral score of text, as the ancestor computes it:
//
//	max(0, min(1, 0.8 − (h·0.15) + (p·0.05)))
//
// in float64, each operation rounded, left to right, where h and p count
// every occurrence of a listed harmful and positive word. So one positive word
// scores 0.8 + 0.05 = 0.8500000000000001, not the double nearest 0.85; text
// with no listed word (empty or blank text too) scores 0.8.
//
// Words are counted as Python's re counts \b(word|...)\b with IGNORECASE on a
// str: a word is a maximal run of word characters, which are Unicode letters
// and numbers (categories L and N) and the underscore, and it counts when it
// equals a listed word character by character, ignoring case as Python's re
// does. "self-harm", "HELP!" and "(care)" count; "harmless", "kill_bomb" and
// "kill2" do not. Besides ASCII letters of either case, the characters that
// stand for a listed word's letters are those Python's re matches to them:
// U+0130 İ and U+0131 ı for i, U+212A KELVIN SIGN for k, U+017F ſ for s.
func Score(text string) float64 {
	h, p := 0, 0
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
			if !unicode.IsLetter(r) && !unicode.IsNumber(r) {
				break
			}
			i += n
		}
		if i > start {
			switch wordKind(text[start:i]) {
			case harmful:
				h++
			case positive:
				p++
			}
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
	// The conversions round each product, so that no platform fuses a
	// product into the sum.
	s := neutralScore - float64(float64(h)*harmWeight) + float64(float64(p)*posWeight)
	return max(0, min(1, s))
}

const (
	neutralScore = 0.8  // score of text with no listed word
	harmWeight   = 0.15 // score lost per harmful word
	posWeight    = 0.05 // score gained per positive word
)

// ASCII word bytes (0-9, A-Z, _, a-z) as bitmasks over bytes 0-63 and 64-127.
const (
	wordLo = 0x03ff_0000_0000_0000
	wordHi = 0x07ff_fffe_87ff_fffe
)

func isWordByte(c byte) bool {
	if c < 64 {
		return wordLo>>c&1 != 0
	}
	return wordHi>>(c-64)&1 != 0
}

type kind int

const (
	neutral kind = iota
	harmful
	positive
)

// maxWordLen is the length of the longest listed word, "understanding".
const maxWordLen = 13

// wordKind reports whether the word w is a listed harmful or positive word.
func wordKind(w string) kind {
	// Lower into a stack buffer; a switch on the converted string compiles
	// to comparisons without allocating.
	var buf [maxWordLen]byte
	n := 0
	for i := 0; i < len(w); n++ {
		if n == len(buf) {
			return neutral
		}
		if c := w[i]; c < utf8.RuneSelf {
			// Lowercases letters; digits and '_' stay outside a-z.
			buf[n] = c | 0x20
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(w[i:])
		switch r {
		case '\u0130', '\u0131': // İ, ı: Python's re matches them to i
			buf[n] = 'i'
		case '\u212A': // KELVIN SIGN: to k
			buf[n] = 'k'
		case '\u017F': // LATIN SMALL LETTER LONG S: to s
			buf[n] = 's'
		default:
			return neutral // matches no ASCII letter, so no listed word
		}
		i += size
	}
	switch string(buf[:n]) {
	case "hate", "violence", "attack", "kill", "destroy", "harm", "abuse", "exploit",
		"discriminate", "racist", "sexist", "terrorist", "weapon", "bomb", "murder":
		return harmful
	case "help", "support", "care", "love", "kind", "respect", "ethical", "fair",
		"honest", "trust", "safe", "protect", "collaborate", "peace", "understanding":
		return positive
	}
	return neutral
}
