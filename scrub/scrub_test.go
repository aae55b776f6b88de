package scrub

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unsafe"
)

type scrubCase struct {
	name  string
	input string
	want  string
	wantN int
}

func runCases(t *testing.T, tests []scrubCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := Append(nil, []byte(tt.input))
			if string(got) != tt.want || n != tt.wantN {
				t.Fatalf("Append(%q) = %q, %d; want %q, %d", tt.input, got, n, tt.want, tt.wantN)
			}
			gs, gn := String(tt.input)
			if gs != tt.want || gn != tt.wantN {
				t.Fatalf("String(%q) = %q, %d; want %q, %d", tt.input, gs, gn, tt.want, tt.wantN)
			}
		})
	}
}

func TestEmail(t *testing.T) {
	runCases(t, []scrubCase{
		{name: "ordinary", input: "write to john@example.com today", want: "write to [email] today", wantN: 1},
		{name: "dots in local part", input: "john.doe@example.com", want: "[email]", wantN: 1},
		{name: "plus addressing", input: "jane+news@example.org", want: "[email]", wantN: 1},
		{name: "subdomains", input: "ops@mail.eu.example.co.uk", want: "[email]", wantN: 1},
		{name: "digits and dashes", input: "x-1_y@ex-ample.io", want: "[email]", wantN: 1},
		{name: "apostrophe", input: "o'brien@example.ie", want: "[email]", wantN: 1},
		{name: "percent and others", input: "user%host!a#b$c&d*e=f?g^h`i{j|k}l~m/n@example.com", want: "[email]", wantN: 1},
		{name: "upper case", input: "JOHN@EXAMPLE.COM", want: "[email]", wantN: 1},
		{name: "IDN TLD", input: "a@example.xn--p1ai", want: "[email]", wantN: 1},
		{name: "angle brackets", input: "John <john@example.com>", want: "John <[email]>", wantN: 1},
		{name: "mailto", input: "mailto:john@example.com", want: "mailto:[email]", wantN: 1},
		{name: "sentence end", input: "mail john@example.com.", want: "mail [email].", wantN: 1},
		{name: "quoted in single quotes", input: "'john@example.com'", want: "'[email]'", wantN: 1},
		{name: "leading punctuation not taken", input: "--john@example.com", want: "--[email]", wantN: 1},
		{name: "two", input: "a@b.cd, e@f.gh", want: "[email], [email]", wantN: 2},
		{name: "non-ASCII around", input: "écrivez à jean@exemple.fr s'il vous plaît", want: "écrivez à [email] s'il vous plaît", wantN: 1},
		{name: "CJK glued", input: "连络jean@exemple.fr谢谢", want: "连络[email]谢谢", wantN: 1},
		{name: "bare handle", input: "ping @johndoe on chat", want: "ping @johndoe on chat", wantN: 0},
		{name: "handle with dot", input: "thanks @john.doe!", want: "thanks @john.doe!", wantN: 0},
		{name: "no TLD", input: "root@localhost", want: "root@localhost", wantN: 0},
		{name: "numeric TLD", input: "a@b.c1", want: "a@b.c1", wantN: 0},
		{name: "one-letter TLD", input: "a@b.c", want: "a@b.c", wantN: 0},
		{name: "label ends in dash", input: "a@b-.com", want: "a@b-.com", wantN: 0},
		{name: "empty local part", input: "@example.com", want: "@example.com", wantN: 0},
		{name: "decorator", input: "@Override public", want: "@Override public", wantN: 0},
		{name: "email wins over phone in local part", input: "415-555-2671@example.com", want: "[email]", wantN: 1},
		{name: "email wins over ip in local part", input: "10.0.0.1@example.com", want: "[email]", wantN: 1},
		{name: "double at", input: "a@b@example.com", want: "a@[email]", wantN: 1},
	})
}

func TestPhone(t *testing.T) {
	runCases(t, []scrubCase{
		{name: "UK international", input: "call +44 20 7946 0958 now", want: "call [phone] now", wantN: 1},
		{name: "US international with parens", input: "+1 (415) 555-2671", want: "[phone]", wantN: 1},
		{name: "France", input: "+33 1 23 45 67 89", want: "[phone]", wantN: 1},
		{name: "Germany dashes", input: "+49-30-123456", want: "[phone]", wantN: 1},
		{name: "Japan", input: "+81 3-1234-5678", want: "[phone]", wantN: 1},
		{name: "trunk zero in parens", input: "+44 (0)20 7946 0958", want: "[phone]", wantN: 1},
		{name: "international compact", input: "+442079460958", want: "[phone]", wantN: 1},
		{name: "international dots", input: "+33.1.23.45.67.89", want: "[phone]", wantN: 1},
		{name: "after a colon", input: "Phone:+1 415 555 2671", want: "Phone:[phone]", wantN: 1},
		{name: "US parens", input: "(415) 555-2671", want: "[phone]", wantN: 1},
		{name: "US dashes", input: "tel 415-555-2671.", want: "tel [phone].", wantN: 1},
		{name: "US dots", input: "415.555.2671", want: "[phone]", wantN: 1},
		{name: "US spaces with 1", input: "1 415 555 2671", want: "[phone]", wantN: 1},
		{name: "UK national", input: "ring 020 7946 0958", want: "ring [phone]", wantN: 1},
		{name: "French national", input: "01 23 45 67 89", want: "[phone]", wantN: 1},
		{name: "German national", input: "030 1234567", want: "[phone]", wantN: 1},
		{name: "tel prefix", input: "tel:415-555-2671", want: "tel:[phone]", wantN: 1},
		{name: "non-ASCII around", input: "電話415-555-2671まで", want: "電話[phone]まで", wantN: 1},
		{name: "two in a list", input: "415-555-2671, 212-555-1234", want: "[phone], [phone]", wantN: 2},
		{name: "version", input: "v10.4.12 and 2.15.3 and 1.2.3", want: "v10.4.12 and 2.15.3 and 1.2.3", wantN: 0},
		{name: "ISO date", input: "2026-12-03", want: "2026-12-03", wantN: 0},
		{name: "slash date", input: "03/12/2026", want: "03/12/2026", wantN: 0},
		{name: "dotted date", input: "12.03.2026", want: "12.03.2026", wantN: 0},
		{name: "date and time", input: "2026-12-03 10:30:00", want: "2026-12-03 10:30:00", wantN: 0},
		{name: "time", input: "10:30:00", want: "10:30:00", wantN: 0},
		{name: "ordinary numbers", input: "42 3.14159 1,000,000 20000 1999", want: "42 3.14159 1,000,000 20000 1999", wantN: 0},
		{name: "thousands with spaces", input: "100 000 000", want: "100 000 000", wantN: 0},
		{name: "thousands with dots", input: "123.456.789", want: "123.456.789", wantN: 0},
		{name: "bare digit run", input: "4155552671", want: "4155552671", wantN: 0},
		{name: "year range", input: "1999-2005 2010-2015", want: "1999-2005 2010-2015", wantN: 0},
		{name: "ISBN", input: "978-3-16-148410-0", want: "978-3-16-148410-0", wantN: 0},
		{name: "UUID", input: "550e8400-e29b-41d4-a716-446655440000", want: "550e8400-e29b-41d4-a716-446655440000", wantN: 0},
		{name: "port", input: "localhost:8080", want: "localhost:8080", wantN: 0},
		{name: "short international", input: "+3.14 and +20000", want: "+3.14 and +20000", wantN: 0},
		{name: "sum", input: "1+2345678", want: "1+2345678", wantN: 0},
		{name: "16 digits are not a phone", input: "+1234 5678 9012 3456", want: "+1234 5678 9012 3456", wantN: 0},
		{name: "part of a longer number", input: "415-555-2671-1", want: "415-555-2671-1", wantN: 0},
		{name: "not North American", input: "123-456-7890 415-155-2671", want: "123-456-7890 415-155-2671", wantN: 0},
		{name: "grouped id without trunk 0", input: "2026-1203-5567", want: "2026-1203-5567", wantN: 0},
		{name: "list of numbers", input: "42 20000 1999", want: "42 20000 1999", wantN: 0},
		{name: "tail of a spaced run", input: "7 0207 946 0958", want: "7 0207 946 0958", wantN: 0},
		{name: "glued to letters", input: "ab415-555-2671", want: "ab415-555-2671", wantN: 0},
		{name: "mixed national separators stop", input: "415-555 2671", want: "415-555 2671", wantN: 0},
	})
}

func TestCard(t *testing.T) {
	runCases(t, []scrubCase{
		{name: "visa spaces", input: "card 4111 1111 1111 1111 exp", want: "card [card] exp", wantN: 1},
		{name: "visa dashes", input: "4111-1111-1111-1111", want: "[card]", wantN: 1},
		{name: "visa compact", input: "4111111111111111", want: "[card]", wantN: 1},
		{name: "amex compact", input: "378282246310005", want: "[card]", wantN: 1},
		{name: "amex grouped", input: "3782 822463 10005", want: "[card]", wantN: 1},
		{name: "mastercard", input: "5555555555554444", want: "[card]", wantN: 1},
		{name: "diners 14", input: "3056 930902 5904", want: "[card]", wantN: 1},
		{name: "19 digits", input: "6011 0009 9013 9424 009", want: "[card]", wantN: 1},
		{name: "invalid 19 digits keep the valid 16", input: "6011 0009 9013 9424 000", want: "[card] 000", wantN: 1},
		{name: "discover", input: "6011000990139424", want: "[card]", wantN: 1},
		{name: "trailing group not swallowed", input: "4111 1111 1111 1111 2026", want: "[card] 2026", wantN: 1},
		{name: "Luhn-invalid 16 digits", input: "4111 1111 1111 1112", want: "4111 1111 1111 1112", wantN: 0},
		{name: "Luhn-invalid compact", input: "4111111111111112", want: "4111111111111112", wantN: 0},
		{name: "Luhn-valid but not a network prefix", input: "1764758400009", want: "1764758400009", wantN: 0},
		{name: "mixed separators", input: "4111 1111-1111 1111", want: "4111 1111-1111 1111", wantN: 0},
		{name: "20 digits", input: "41111111111111111111", want: "41111111111111111111", wantN: 0},
		{name: "glued to letters", input: "x4111111111111111", want: "x4111111111111111", wantN: 0},
		{name: "Luhn-invalid 15 digits grouped is left alone", input: "3782-822463-10006", want: "3782-822463-10006", wantN: 0},
		{name: "15 digits with trunk 0 are a phone", input: "0378-822463-10005", want: "[phone]", wantN: 1},
		{name: "Luhn-valid 15 digits grouped is a card", input: "3782-822463-10005", want: "[card]", wantN: 1},
		{name: "non-ASCII around", input: "カード4111111111111111です", want: "カード[card]です", wantN: 1},
	})
}

func TestIP(t *testing.T) {
	runCases(t, []scrubCase{
		{name: "v4", input: "from 192.168.1.100 at", want: "from [ip] at", wantN: 1},
		{name: "v4 with port", input: "10.0.0.1:8080", want: "[ip]:8080", wantN: 1},
		{name: "v4 with prefix", input: "10.0.0.0/8", want: "[ip]/8", wantN: 1},
		{name: "v4 zeros", input: "0.0.0.0 255.255.255.255", want: "[ip] [ip]", wantN: 2},
		{name: "v4 leading zeros", input: "010.001.000.001", want: "[ip]", wantN: 1},
		{name: "v4 sentence end", input: "host 1.2.3.4.", want: "host [ip].", wantN: 1},
		{name: "v4 in brackets", input: "[203.0.113.7]", want: "[[ip]]", wantN: 1},
		{name: "v4 octet too big", input: "256.1.1.1", want: "256.1.1.1", wantN: 0},
		{name: "v4 five parts", input: "1.2.3.4.5", want: "1.2.3.4.5", wantN: 0},
		{name: "v4 three parts", input: "1.2.3", want: "1.2.3", wantN: 0},
		{name: "v4 after version v", input: "v1.2.3.4", want: "v1.2.3.4", wantN: 0},
		{name: "v4 wins tie with phone", input: "192.168.10.100", want: "[ip]", wantN: 1},
		{name: "v6 compressed", input: "2001:db8::1", want: "[ip]", wantN: 1},
		{name: "v6 loopback", input: "ping ::1 now", want: "ping [ip] now", wantN: 1},
		{name: "v6 link-local", input: "fe80::1ff:fe23:4567:890a", want: "[ip]", wantN: 1},
		{name: "v6 full", input: "2001:0db8:0000:0000:0000:ff00:0042:8329", want: "[ip]", wantN: 1},
		{name: "v6 mapped v4", input: "::ffff:192.0.2.128", want: "[ip]", wantN: 1},
		{name: "v6 full with v4", input: "0:0:0:0:0:ffff:192.0.2.128", want: "[ip]", wantN: 1},
		{name: "v6 zone", input: "fe80::1%eth0 up", want: "[ip] up", wantN: 1},
		{name: "v6 upper case", input: "2001:DB8::FF00:42:8329", want: "[ip]", wantN: 1},
		{name: "v6 trailing ::", input: "2001:db8:: is a prefix", want: "[ip] is a prefix", wantN: 1},
		{name: "v6 with port in brackets", input: "[2001:db8::1]:443", want: "[[ip]]:443", wantN: 1},
		{name: "v6 sentence colon", input: "addr 2001:db8::1: up", want: "addr [ip]: up", wantN: 1},
		{name: "v6 prefix length", input: "2001:db8::/32", want: "[ip]/32", wantN: 1},
		{name: "time", input: "10:30:00", want: "10:30:00", wantN: 0},
		{name: "MAC address", input: "00:1a:2b:3c:4d:5e", want: "00:1a:2b:3c:4d:5e", wantN: 0},
		{name: "C++ scope", input: "std::vector a::b Foo::Bar dead::beef", want: "std::vector a::b Foo::Bar dead::beef", wantN: 0},
		{name: "two double colons", input: "1::2::3", want: "1::2::3", wantN: 0},
		{name: "nine groups", input: "1:2:3:4:5:6:7:8:9", want: "1:2:3:4:5:6:7:8:9", wantN: 0},
		{name: "five hex digits", input: "2001:db8::12345", want: "2001:db8::12345", wantN: 0},
		{name: "seven groups no ::", input: "1:2:3:4:5:6:7", want: "1:2:3:4:5:6:7", wantN: 0},
		{name: "glued to word", input: "x2001:db8::1", want: "x2001:db8::1", wantN: 0},
		{name: "non-ASCII around", input: "адрес::1и", want: "адрес[ip]и", wantN: 1},
	})
}

func TestIBAN(t *testing.T) {
	runCases(t, []scrubCase{
		{name: "GB print form", input: "IBAN GB82 WEST 1234 5698 7654 32 thanks", want: "IBAN [iban] thanks", wantN: 1},
		{name: "DE compact", input: "DE89370400440532013000", want: "[iban]", wantN: 1},
		{name: "DE print form", input: "DE89 3704 0044 0532 0130 00", want: "[iban]", wantN: 1},
		{name: "BE full last group then a word", input: "BE68 5390 0754 7034 SENT", want: "[iban] SENT", wantN: 1},
		{name: "NO shortest", input: "NO9386011117947", want: "[iban]", wantN: 1},
		{name: "NL", input: "(NL91ABNA0417164300)", want: "([iban])", wantN: 1},
		{name: "bad check", input: "GB82 WEST 1234 5698 7654 33", want: "GB82 WEST 1234 5698 7654 33", wantN: 0},
		{name: "bad check compact", input: "DE89370400440532013001", want: "DE89370400440532013001", wantN: 0},
		{name: "lower case", input: "de89370400440532013000", want: "de89370400440532013000", wantN: 0},
		{name: "glued to word", input: "xDE89370400440532013000", want: "xDE89370400440532013000", wantN: 0},
		{name: "too short", input: "DE8937040044", want: "DE8937040044", wantN: 0},
		{name: "non-ASCII around", input: "Konto:DE89370400440532013000—danke", want: "Konto:[iban]—danke", wantN: 1},
	})
}

func TestMixed(t *testing.T) {
	runCases(t, []scrubCase{
		{name: "empty", input: "", want: "", wantN: 0},
		{name: "plain text", input: "the cat sat on the mat", want: "the cat sat on the mat", wantN: 0},
		{name: "everything",
			input: "Mail ann@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, from 203.0.113.7 and 2001:db8::42.",
			want:  "Mail [email] or call [phone]; card [card], IBAN [iban], from [ip] and [ip].",
			wantN: 6},
		{name: "adjacent after marker", input: "10.0.0.1,10.0.0.2", want: "[ip],[ip]", wantN: 2},
		{name: "comma between numbers glues", input: "415-555-2671,0", want: "415-555-2671,0", wantN: 0},
		{name: "phone then email", input: "(415) 555-2671 john@example.com", want: "[phone] [email]", wantN: 2},
		{name: "phone digits in a local part", input: "(415) 555-2671.john@example.com", want: "(415) [email]", wantN: 1},
		{name: "invalid UTF-8", input: "\xff\xfe john@example.com \xc3", want: "\xff\xfe [email] \xc3", wantN: 1},
		{name: "marker text is left alone", input: "[email] [phone] [card] [ip] [iban]", want: "[email] [phone] [card] [ip] [iban]", wantN: 0},
	})
}

func TestAppendKeepsDst(t *testing.T) {
	dst := []byte("prefix:")
	out, n := Append(dst, []byte("x 10.0.0.1 y"))
	if string(out) != "prefix:x [ip] y" || n != 1 {
		t.Fatalf("Append = %q, %d", out, n)
	}
}

func TestStringNoMatchReturnsInput(t *testing.T) {
	s := strings.Repeat("nothing to see here 1.2.3 ", 10)
	got, n := String(s)
	if n != 0 || got != s || unsafe.StringData(got) != unsafe.StringData(s) {
		t.Fatalf("String did not return its input itself")
	}
	if a := testing.AllocsPerRun(100, func() { String(s) }); a != 0 {
		t.Fatalf("String with no match allocates %v times", a)
	}
}

func TestAppendAllocs(t *testing.T) {
	src := []byte("Mail ann@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111 from ::1")
	dst := make([]byte, 0, 2*len(src))
	if a := testing.AllocsPerRun(100, func() { Append(dst, src) }); a != 0 {
		t.Fatalf("Append with room allocates %v times", a)
	}
}

// TestLinear checks that adversarial inputs scan in time linear in their
// length: 16 times the input must take far less than 16² times as long.
// Time is noisy, so the bound is loose (×64) and each side is the fastest
// of several runs; quadratic behaviour shows as ×256.
func TestLinear(t *testing.T) {
	units := []string{
		"1.2.3.4_", "a", "1", "1-", "+1 ", "4111 ", "GB82 ", "a.", "::1:", "1:", "(1) ",
		"x@", "@a.", "a@b.", "1.2.3.4@", "2001:db8::", "%", "%a", "0 ", "a-",
	}
	fastest := func(src []byte) time.Duration {
		best := time.Duration(1 << 62)
		dst := make([]byte, 0, 8*len(src))
		for range 5 {
			start := time.Now()
			Append(dst, src)
			best = min(best, time.Since(start))
		}
		return best
	}
	for _, u := range units {
		small := bytes.Repeat([]byte(u), 4096/len(u)+1)
		large := bytes.Repeat([]byte(u), 16*(4096/len(u)+1))
		ts, tl := fastest(small), fastest(large)
		if tl > 64*ts && tl > time.Millisecond {
			t.Errorf("unit %q: 16× input took %v vs %v", u, tl, ts)
		}
	}
}

// TestClasses checks the byte class table against the sets it encodes.
func TestClasses(t *testing.T) {
	const (
		digits = "0123456789"
		upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		lower  = "abcdefghijklmnopqrstuvwxyz"
		alnum  = digits + upper + lower
		word   = alnum + "_"
	)
	sets := []struct {
		name string
		is   func(byte) bool
		set  string
	}{
		{"digit", isDigit, digits},
		{"alnum", isAlnum, alnum},
		{"word", isWord, word},
		{"local", isLocal, word + "!#$%&'*+-/=?^`{|}~."},
		{"start", isStart, word + "+(:"},
		{"hex", isHex, digits + "abcdefABCDEF"},
		{"upper", isUpper, upper},
	}
	if len(classes) != 256 {
		t.Fatalf("classes has %d bytes", len(classes))
	}
	for _, s := range sets {
		for c := 0; c < 256; c++ {
			if want := c < 128 && strings.IndexByte(s.set, byte(c)) >= 0; s.is(byte(c)) != want {
				t.Errorf("%s(%#x) = %v, want %v", s.name, c, !want, want)
			}
		}
	}
}
