package scrub

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// FuzzAppend checks, for any bytes, that Append does not panic, that the
// result is no longer than len(src) + n·MaxMarkerLen, that n == 0 leaves
// the text as it was, that String agrees with Append, that valid UTF-8
// stays valid (no rune is split), and that a second pass leaves every marker
// of the first in place.
//
// It does not assert that a second pass finds nothing, because that does
// not hold: a candidate refused for running on too long can become valid
// once its tail was replaced. In "+0000000000000 3782 822463 10005" the
// phone reads 17 digits and is refused, the card after it is replaced, and
// a second pass then reads "+0000000000000 [card]", a 13-digit phone.
func FuzzAppend(f *testing.F) {
	f.Fuzz(func(t *testing.T, src []byte) {
		out, n := Append(nil, src)
		if len(out) > len(src)+n*MaxMarkerLen {
			t.Fatalf("Append(%q) = %q: %d bytes from %d with %d matches", src, out, len(out), len(src), n)
		}
		if n == 0 && !bytes.Equal(out, src) {
			t.Fatalf("Append(%q) = %q with no match", src, out)
		}
		if s, sn := String(string(src)); s != string(out) || sn != n {
			t.Fatalf("String(%q) = %q, %d; Append gave %q, %d", src, s, sn, out, n)
		}
		if utf8.Valid(src) && !utf8.Valid(out) {
			t.Fatalf("Append(%q) = %q is not valid UTF-8", src, out)
		}
		again, _ := Append(nil, out)
		for _, m := range []string{Email, Phone, Card, IP, IBAN} {
			if bytes.Count(again, []byte(m)) < bytes.Count(out, []byte(m)) {
				t.Fatalf("Append(%q) = %q, and again %q lost a %s", src, out, again, m)
			}
		}
	})
}
