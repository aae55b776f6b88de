package scrub

import (
	"bytes"
	"unsafe"
)

// The markers that replace each kind of personal data.
const (
	Email = "[email]"
	Phone = "[phone]"
	Card  = "[card]"
	IP    = "[ip]"
	IBAN  = "[iban]"
)

// MaxMarkerLen is the length of the longest marker: one match never grows
// the text by more than MaxMarkerLen bytes.
const MaxMarkerLen = len(Email)

// kind is what a match is; a higher kind wins a tie in length.
type kind uint8

const (
	kindNone kind = iota
	kindPhone
	kindIP
	kindCard
	kindIBAN
	kindEmail
)

func (k kind) marker() string {
	switch k {
	case kindPhone:
		return Phone
	case kindIP:
		return IP
	case kindCard:
		return Card
	case kindIBAN:
		return IBAN
	case kindEmail:
		return Email
	}
	return ""
}

// Append appends src to dst with every match replaced by its marker, and
// returns the extended buffer and the number of matches replaced. It
// allocates only when dst lacks room for the result, which is never longer
// than len(src) + n·MaxMarkerLen.
func Append(dst, src []byte) (out []byte, n int) {
	s := scanner{src: src, nextAt: -1}
	last := 0
	for {
		start, end, k := s.next(last)
		if k == kindNone {
			return append(dst, src[last:]...), n
		}
		dst = append(dst, src[last:start]...)
		dst = append(dst, k.marker()...)
		last = end
		n++
	}
}

// String returns s with every match replaced by its marker, and the number
// of matches replaced. When nothing matched it returns s itself and does not
// allocate; otherwise it allocates the result once.
func String(s string) (string, int) {
	src := unsafe.Slice(unsafe.StringData(s), len(s))
	sc := scanner{src: src, nextAt: -1}
	if _, _, k := sc.next(0); k == kindNone {
		return s, 0
	}
	out, n := Append(make([]byte, 0, len(s)+16), src)
	return unsafe.String(unsafe.SliceData(out), len(out)), n
}

// scanner finds matches left to right. Its caches only ever move forward,
// which keeps a whole scan linear in len(src).
type scanner struct {
	src []byte
	// lastEnd is the end of the previous match: the bytes before it read as
	// the marker that replaced them, whose last byte is ']'.
	lastEnd int
	// nextAt is the index of the first '@' at or after the scan position,
	// or len(src) when there is none; -1 before the first look.
	nextAt int
	// runFrom ≤ i < runEnd means src[i:runEnd] is local-part bytes and
	// src[runEnd] is not (or runEnd == len(src)).
	runFrom, runEnd int
	// domAt is the '@' whose domain ended at domEnd (-1: no domain).
	domAt, domEnd int
}

// at returns src[k] as the scrubbed text reads it: a byte replaced by the
// previous match reads as ']'.
func (s *scanner) at(k int) byte {
	if k < s.lastEnd {
		return ']'
	}
	return s.src[k]
}

// next returns the leftmost match starting at or after from: among matches
// that start at one byte the longest, among those of one length the higher
// kind. k is kindNone when there is none.
func (s *scanner) next(from int) (start, end int, k kind) {
	src := s.src
	s.lastEnd = from
	// prev is the byte before src[i] in the scrubbed text.
	prev := byte(' ')
	if from > 0 {
		prev = ']'
	}
	// inRun: the previous byte is a local-part byte; started: the run has
	// already had the byte an e-mail address could start with.
	inRun, started := false, false
	for i := from; i < len(src); i++ {
		c, p := src[i], prev
		prev = c
		if isWord(c) && isWord(p) {
			// Inside a word nothing starts, and the run of local-part
			// bytes the word belongs to has started.
			continue
		}
		emailHere := false
		if isLocal(c) {
			if !inRun {
				inRun, started = true, false
			}
			if !started && isWord(c) {
				started, emailHere = true, true
			}
		} else {
			inRun = false
		}
		if !isStart(c) {
			continue
		}
		// s.nextAt == len(src): no '@' is left.
		if emailHere && s.nextAt < len(src) {
			// Nothing else at i can pass the '@'.
			if e := s.email(i); e > 0 {
				return i, e, kindEmail
			}
		}
		end, k := -1, kindNone
		switch {
		case c >= 'g' && c <= 'z' || c == '_':
			// Only an e-mail address starts with these.
		case isDigit(c):
			if s.blocked(i, p) {
				continue
			}
			end, k = better(end, k, ipv4Match(src, i), kindIP)
			end, k = better(end, k, cardMatch(src, i), kindCard)
			// A national number must start its run of space-joined digits.
			spaced := p == ' ' && i >= 2 && isDigit(s.at(i-2))
			end, k = better(end, k, phoneMatch(src, i, spaced), kindPhone)
			end, k = better(end, k, ipv6Match(src, i), kindIP)
		case c >= 'A' && c <= 'Z':
			if s.blocked(i, p) {
				continue
			}
			end, k = better(end, k, ibanMatch(src, i), kindIBAN)
			if c <= 'F' {
				end, k = better(end, k, ipv6Match(src, i), kindIP)
			}
		case c == '+' || c == '(':
			if !s.blocked(i, p) {
				end, k = better(end, k, phoneMatch(src, i, false), kindPhone)
			}
		default: // a-f, ':'
			if !s.blocked(i, p) {
				end, k = better(end, k, ipv6Match(src, i), kindIP)
			}
		}
		if k != kindNone {
			return i, end, k
		}
	}
	return len(src), len(src), kindNone
}

// better returns the longer of two candidate matches at one start, of equal
// length the higher kind; an end of -1 is no match.
func better(end int, k kind, e int, ek kind) (int, kind) {
	if e > end || e == end && e >= 0 && ek > k {
		return e, ek
	}
	return end, k
}

// blocked reports whether a number, IP address or IBAN may not start at i,
// after p, because it would continue the text before it: after a letter,
// digit, '_' or '@', after '.', '-' or '/' that follow a letter or digit,
// after ':' that follows a digit or ':', and after ',' that follows a digit.
func (s *scanner) blocked(i int, p byte) bool {
	if i == 0 {
		return false
	}
	if isWord(p) || p == '@' {
		return true
	}
	return i >= 2 && glued(s.at(i-2), p)
}

// glued reports whether the separator p binds the byte x before it to what
// follows.
func glued(x, p byte) bool {
	switch p {
	case '.', '-', '/':
		return isAlnum(x)
	case ':':
		return isDigit(x) || x == ':'
	case ',':
		return isDigit(x)
	}
	return false
}

// endOK reports whether a number may end at e: not before a letter, digit,
// '_' or '@', nor before '.', '-' or '/' that lead on to a letter or digit,
// nor before ':' or ',' that lead on to a digit. ipv4 relaxes '/', ':' and
// ',' for a prefix length (/24), a port (:8080) or a list (,10.0.0.2).
//
// What a separator leads on to may be a marker on a second pass; '[' counts
// as what the marker replaced would have, so that scrubbing the result again
// does not find a match that the first pass refused.
func endOK(src []byte, e int, ipv4 bool) bool {
	if e >= len(src) {
		return true
	}
	c := src[e]
	if isWord(c) || c == '@' {
		return false
	}
	if e+1 >= len(src) {
		return true
	}
	d := src[e+1]
	switch c {
	case '.', '-':
		return !isAlnum(d) && d != '['
	case '/':
		return ipv4 || !isAlnum(d) && d != '['
	case ':', ',':
		return ipv4 || !isDigit(d) && d != '['
	}
	return true
}

// email returns the end of the e-mail address whose local part starts at i,
// or -1: the run of local-part bytes from i must reach an '@' that a valid
// domain follows.
func (s *scanner) email(i int) int {
	src := s.src
	if s.nextAt < i { // -1 before the first look
		if j := bytes.IndexByte(src[i:], '@'); j >= 0 {
			s.nextAt = i + j
		} else {
			s.nextAt = len(src)
		}
	}
	if i < s.runFrom || i >= s.runEnd {
		j := i
		for j < len(src) && isLocal(src[j]) {
			j++
		}
		s.runFrom, s.runEnd = i, j
	}
	at := s.runEnd
	if at >= len(src) || src[at] != '@' {
		return -1
	}
	if s.domAt != at || s.domEnd == 0 {
		s.domAt, s.domEnd = at, domainMatch(src, at+1)
	}
	return s.domEnd
}

// Byte classes, one bit each in classes[c]. Bytes from 0x80 are in none.
const (
	cWord  = 1 << iota // letters, digits and '_'
	cLocal             // e-mail local part: RFC 5322 atext and '.'
	cStart             // a match may start here: word bytes, '+', '(' and ':'
	cDigit
	cHex
	cAlnum
	cUpper
)

// classes is indexed by a byte, so the index needs no bounds check.
const classes = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x02\x00\x02\x02\x02\x02\x02\x04\x00\x02\x06\x00\x02\x02\x02" +
	"\x3f\x3f\x3f\x3f\x3f\x3f\x3f\x3f\x3f\x3f\x04\x00\x00\x02\x00\x02" +
	"\x00\x77\x77\x77\x77\x77\x77\x67\x67\x67\x67\x67\x67\x67\x67\x67" +
	"\x67\x67\x67\x67\x67\x67\x67\x67\x67\x67\x67\x00\x00\x00\x02\x07" +
	"\x02\x37\x37\x37\x37\x37\x37\x27\x27\x27\x27\x27\x27\x27\x27\x27" +
	"\x27\x27\x27\x27\x27\x27\x27\x27\x27\x27\x27\x02\x02\x02\x02\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

func isDigit(c byte) bool { return classes[c]&cDigit != 0 }
func isAlnum(c byte) bool { return classes[c]&cAlnum != 0 }
func isWord(c byte) bool  { return classes[c]&cWord != 0 }
func isLocal(c byte) bool { return classes[c]&cLocal != 0 }
func isStart(c byte) bool { return classes[c]&cStart != 0 }
func isHex(c byte) bool   { return classes[c]&cHex != 0 }
func isUpper(c byte) bool { return classes[c]&cUpper != 0 }
