package scrub

// Each xMatch returns the end of its kind of match starting at src[i], or -1.
// The caller has checked that nothing glues src[i] to the text before it;
// each checks the text after it. Every one reads a bounded number of bytes
// (the longest, an e-mail domain, stops at the first byte no label holds).

// domainMatch returns the end of an e-mail domain starting at i: two or more
// dot-separated labels of letters, digits and '-' (1-63 bytes, no '-' at
// either end), the last all letters (2 or more) or an IDN "xn--" label.
func domainMatch(src []byte, i int) int {
	labels, last, end := 0, 0, -1
	for j := i; ; {
		k := j
		for k < len(src) && (isAlnum(src[k]) || src[k] == '-') {
			k++
		}
		if k == j || k-j > 63 || src[j] == '-' || src[k-1] == '-' {
			break
		}
		labels, last, end = labels+1, j, k
		if k+1 < len(src) && src[k] == '.' && isAlnum(src[k+1]) {
			j = k + 1
			continue
		}
		break
	}
	if labels < 2 || !isTLD(src[last:end]) {
		return -1
	}
	if end < len(src) {
		c := src[end]
		if isWord(c) || c == '@' || c == '-' || c == '.' && end+1 < len(src) && (isAlnum(src[end+1]) || src[end+1] == '[') {
			return -1
		}
	}
	return end
}

func isTLD(l []byte) bool {
	if len(l) < 2 {
		return false
	}
	if len(l) > 4 && (l[0]|0x20) == 'x' && (l[1]|0x20) == 'n' && l[2] == '-' && l[3] == '-' {
		return true
	}
	for _, c := range l {
		if (c|0x20)-'a' >= 26 {
			return false
		}
	}
	return true
}

// digitRun returns the end of the run of at most max+1 digits from i.
func digitRun(src []byte, i, max int) int {
	j := i
	for j < len(src) && j-i <= max && isDigit(src[j]) {
		j++
	}
	return j
}

// Phone number limits: E.164 allows 15 digits; an international number has
// at least 7, a national one at least 9.
const (
	phoneMaxDigits     = 15
	phoneMinIntl       = 7
	phoneMinNational   = 9
	phoneMaxAreaDigits = 5
)

// phoneMatch matches
//   - international: '+', a digit, then digit groups joined by one ' ', '-'
//     or '.', or by a parenthesised group "(0)" or "(415)" with an optional
//     space either side; 7-15 digits in all;
//   - national with an area code in parentheses: "(415) 555-2671", the
//     area code 1-5 digits, then groups joined as above; 9-15 digits;
//   - national: digit groups joined by one separator, the same throughout
//     (' ', '-' or '.'), either in the North American shape [1] NXX NXX XXXX
//     (N is 2-9) or starting with the trunk prefix 0 ("020 7946 0958",
//     "01 23 45 67 89"), with every group after the first at least 2 digits,
//     9-15 digits in all, and not thousands grouping (a first group of 1-3
//     digits and every other of exactly 3: "0 000 000 000").
//
// spaced says that src[i] follows a space that follows a digit; a national
// number joined by spaces may not start there, so that the tail of a longer
// run of numbers ("1234 5678 9012 3456") is not taken for one.
func phoneMatch(src []byte, i int, spaced bool) int {
	j, digits, groups := i, 0, 0
	intl, paren := src[i] == '+', src[i] == '('
	if intl {
		j++
		if j >= len(src) || !isDigit(src[j]) {
			return -1
		}
	}
	if paren {
		if j, digits = phoneParen(src, i); j < 0 {
			return -1
		}
	}
	var sep byte // the national separator
	var sizes [phoneMaxDigits]uint8
	thousands, end := true, -1
	for {
		k := digitRun(src, j, phoneMaxDigits)
		n := k - j
		if n == 0 {
			break
		}
		digits += n
		if digits > phoneMaxDigits {
			return -1
		}
		if groups > 0 && n != 3 {
			thousands = false
		}
		if !intl && !paren && groups > 0 && n < 2 {
			return -1
		}
		sizes[groups] = uint8(n)
		groups++
		end, j = k, k
		// A separator, then the next group.
		if j+1 >= len(src) {
			break
		}
		c := src[j]
		if c != ' ' && c != '-' && c != '.' {
			if intl && c == '(' {
				if e, n := phoneParen(src, j); e > 0 {
					j, digits = e, digits+n
					continue
				}
			}
			break
		}
		if !intl && !paren {
			if sep == 0 {
				sep = c
			} else if c != sep {
				break
			}
		}
		if isDigit(src[j+1]) {
			j++
			continue
		}
		if intl && c == ' ' && src[j+1] == '(' {
			if e, n := phoneParen(src, j+1); e > 0 {
				j, digits = e, digits+n
				continue
			}
		}
		break
	}
	if end < 0 {
		return -1
	}
	switch {
	case intl:
		if digits < phoneMinIntl {
			return -1
		}
	case paren:
		if digits < phoneMinNational {
			return -1
		}
	default:
		if digits < phoneMinNational || groups < 2 || thousands && sizes[0] <= 3 || spaced && sep == ' ' {
			return -1
		}
		if src[i] != '0' && !nanp(src[i:end], sizes[:groups]) {
			return -1
		}
	}
	if !endOK(src, end, false) {
		return -1
	}
	return end
}

// nanp reports whether the national number b with group sizes g has the
// North American shape [1] NXX NXX XXXX.
func nanp(b []byte, g []uint8) bool {
	if len(g) == 4 && g[0] == 1 && b[0] == '1' {
		b, g = b[2:], g[1:]
	}
	return len(g) == 3 && g[0] == 3 && g[1] == 3 && g[2] == 4 && b[0] >= '2' && b[4] >= '2'
}

// phoneParen reads a parenthesised group of 1-5 digits at i, "(0)20" or
// "(415) 555", and returns where the digits after it start and how many
// digits it held, or -1.
func phoneParen(src []byte, i int) (next, digits int) {
	k := digitRun(src, i+1, phoneMaxAreaDigits)
	if k == i+1 || k-i-1 > phoneMaxAreaDigits || k >= len(src) || src[k] != ')' {
		return -1, 0
	}
	j := k + 1
	if j < len(src) && (src[j] == ' ' || src[j] == '-') {
		j++
	}
	if j >= len(src) || !isDigit(src[j]) {
		return -1, 0
	}
	return j, k - i - 1
}

// cardMatch matches 13-19 digits, contiguous or as a group of 4 followed by
// groups of 3-6 joined by one separator, the same throughout (' ' or '-'),
// that pass the Luhn check and start with 2-6 (the major networks' ranges).
// When the groups run on, the longest Luhn-valid prefix of whole groups
// with 13-19 digits is the card.
func cardMatch(src []byte, i int) int {
	if c := src[i]; c < '2' || c > '6' {
		return -1
	}
	k := digitRun(src, i, 19)
	if n := k - i; n != 4 || k+1 >= len(src) || src[k] != ' ' && src[k] != '-' || !isDigit(src[k+1]) {
		if n < 13 || n > 19 || !luhn(src[i:k]) || !endOK(src, k, false) {
			return -1
		}
		return k
	}
	sep := src[k]
	var ends [8]int // group ends, at most 19/3+1 groups
	ng, digits := 0, 4
	ends[ng] = k
	ng++
	for j := k; j+1 < len(src) && src[j] == sep && isDigit(src[j+1]); {
		e := digitRun(src, j+1, 6)
		n := e - j - 1
		if n < 3 || n > 6 || digits+n > 19 {
			break
		}
		digits += n
		ends[ng] = e
		ng++
		j = e
	}
	for g := ng - 1; g >= 1; g-- {
		e := ends[g]
		if d := countDigits(src[i:e]); d < 13 {
			break
		}
		if luhn(src[i:e]) && endOK(src, e, false) {
			return e
		}
	}
	return -1
}

func countDigits(b []byte) int {
	n := 0
	for _, c := range b {
		if isDigit(c) {
			n++
		}
	}
	return n
}

// luhn reports whether the digits in b (other bytes skipped) pass the Luhn
// check: doubling every second digit from the right, the sum is 0 mod 10.
func luhn(b []byte) bool {
	sum, double := 0, false
	for j := len(b) - 1; j >= 0; j-- {
		if !isDigit(b[j]) {
			continue
		}
		d := int(b[j] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// IBAN lengths over all countries (ISO 13616).
const (
	ibanMin = 15
	ibanMax = 34
)

// ibanMatch matches an IBAN in capitals: two letters, two check digits and
// 11-30 letters or digits, 15-34 in all, either contiguous or in the print
// form of groups of four joined by single spaces (the last 1-4), whose
// ISO 13616 check (the number read with the first four characters moved to
// the end, letters as 10-35, is 1 mod 97) holds. When the groups run on,
// the longest valid prefix of whole groups is the IBAN.
func ibanMatch(src []byte, i int) int {
	if i+4 > len(src) || !isUpper(src[i+1]) || !isDigit(src[i+2]) || !isDigit(src[i+3]) {
		return -1
	}
	if i+4 < len(src) && src[i+4] != ' ' {
		k := i + 4
		for k < len(src) && k-i <= ibanMax && (isUpper(src[k]) || isDigit(src[k])) {
			k++
		}
		if n := k - i; n < ibanMin || n > ibanMax || !ibanValid(src[i:k]) || !endOK(src, k, false) {
			return -1
		}
		return k
	}
	// Print form: "GB82 WEST 1234 5698 7654 32".
	var ends [9]int
	ng, chars := 0, 4
	for j := i + 4; j+1 < len(src) && src[j] == ' ' && chars < ibanMax; {
		k := j + 1
		for k < len(src) && k-j <= 4 && (isUpper(src[k]) || isDigit(src[k])) {
			k++
		}
		n := k - j - 1
		if n == 0 || n > 4 || chars+n > ibanMax {
			break
		}
		chars += n
		ends[ng] = k
		ng++
		j = k
		if n < 4 {
			break
		}
	}
	for g := ng - 1; g >= 0; g-- {
		e := ends[g]
		if n := e - i - g - 1; n < ibanMin {
			break
		}
		if ibanValid(src[i:e]) && endOK(src, e, false) {
			return e
		}
	}
	return -1
}

// ibanValid computes the ISO 13616 check of b, spaces skipped.
func ibanValid(b []byte) bool {
	r := 0
	add := func(c byte) {
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A'+10)) % 97
		}
	}
	for _, c := range b[4:] {
		if c != ' ' {
			add(c)
		}
	}
	for _, c := range b[:4] {
		add(c)
	}
	return r == 1
}

// ipv4Match matches a dotted quad, each part 1-3 digits of value 0-255.
// A port (":8080") or prefix length ("/24") may follow; another ".digit"
// may not (1.2.3.4.5 is not an address).
func ipv4Match(src []byte, i int) int {
	e := ipv4(src, i)
	if e < 0 || !endOK(src, e, true) {
		return -1
	}
	return e
}

// ipv4 returns the end of a dotted quad at i, or -1, and checks nothing after.
func ipv4(src []byte, i int) int {
	j := i
	for part := 0; part < 4; part++ {
		if part > 0 {
			if j >= len(src) || src[j] != '.' {
				return -1
			}
			j++
		}
		k := digitRun(src, j, 3)
		if n := k - j; n == 0 || n > 3 {
			return -1
		}
		v := 0
		for _, c := range src[j:k] {
			v = v*10 + int(c-'0')
		}
		if v > 255 {
			return -1
		}
		j = k
	}
	return j
}

// ipv6Match matches an RFC 4291 text address: eight groups of 1-4 hex
// digits joined by ':', or fewer around one "::", the last two groups
// optionally a dotted quad, then optionally a zone ("%eth0"). A compressed
// address must hold a decimal digit, which leaves a::b and Foo::Bar alone.
// Times (10:30:00) and MAC addresses (6 groups, no "::") do not match.
func ipv6Match(src []byte, i int) int {
	j, groups, end := i, 0, -1
	dcolon, digit := false, false
	if j+1 < len(src) && src[j] == ':' && src[j+1] == ':' {
		dcolon, j, end = true, j+2, j+2
	}
	for groups < 8 {
		k := j
		for k < len(src) && k-j <= 4 && isHex(src[k]) {
			k++
		}
		if k == j {
			break
		}
		if k-j > 4 {
			return -1
		}
		if k < len(src) && src[k] == '.' && (groups == 6 || dcolon && groups < 6) {
			if e := ipv4(src, j); e > 0 {
				groups, end, digit = groups+2, e, true
				break
			}
		}
		for _, c := range src[j:k] {
			if isDigit(c) {
				digit = true
				break
			}
		}
		groups, j, end = groups+1, k, k
		if j+1 >= len(src) || src[j] != ':' {
			break
		}
		if src[j+1] == ':' {
			if dcolon {
				break
			}
			dcolon, j, end = true, j+2, j+2
			continue
		}
		if !isHex(src[j+1]) {
			break
		}
		j++
	}
	if end < 0 || dcolon && (groups > 7 || !digit) || !dcolon && groups != 8 {
		return -1
	}
	// A zone: '%' and letters, digits, '.', '_', '~' or '-', ending in a
	// letter or digit.
	if end+1 < len(src) && src[end] == '%' && isAlnum(src[end+1]) {
		k, last := end+1, end+1
		for k < len(src) && (isWord(src[k]) || src[k] == '.' || src[k] == '~' || src[k] == '-') {
			if isAlnum(src[k]) {
				last = k + 1
			}
			k++
		}
		end = last
	}
	if end < len(src) {
		c := src[end]
		if isWord(c) || c == '@' || c == '%' {
			return -1
		}
		if end+1 < len(src) {
			d := src[end+1]
			// '[' may be a marker where a continuation stood: see endOK.
			if c == ':' && (isHex(d) || d == ':' || d == '[') ||
				(c == '.' || c == '-') && (isAlnum(d) || d == '[') ||
				c == '/' && (isAlnum(d) && !isDigit(d) || d == '[') {
				return -1
			}
		}
	}
	return end
}
