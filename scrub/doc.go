// Package scrub replaces personal data in text by markers, as PROTOCOL.md
// ("Memories", "Scrubbing") asks of a memory created with scrub: true:
// e-mail addresses, phone numbers, payment card numbers, IPv4 and IPv6
// addresses and IBANs become [email], [phone], [card], [ip] and [iban].
//
// # What matches
//
// A match is made of ASCII bytes only: every byte from 0x80 (each byte of
// a multi-byte UTF-8 sequence, and invalid UTF-8) is text around a match,
// so a marker never splits a rune, and non-ASCII letters next to a match do
// not glue to it ("連絡jean@exemple.fr" holds an address). Digits are ASCII
// digits only.
//
//   - E-mail: a local part of RFC 5322 atext and dots (letters, digits and
//     ! # $ % & ' * + - / = ? ^ _ ` { | } ~ .) starting with a letter, digit
//     or '_', then '@', then a domain of two or more dot-separated labels of
//     letters, digits and '-' (1-63 bytes, no '-' at either end) whose last
//     label is 2+ letters or an IDN "xn--" label. The local part is the
//     whole run of atext before the '@' less any leading punctuation, so
//     in "'ann@example.com'" the quotes stay. Quoted local parts, IP
//     literal domains, dotless domains (root@localhost) and Unicode domains
//     are not matched; a bare @handle never is.
//   - Phone: international, '+' and a digit, then digit groups joined by a
//     single ' ', '-' or '.' or by a parenthesised group "(0)", "(415)",
//     7-15 digits (E.164); national with the area code in parentheses,
//     "(415) 555-2671", 9-15 digits; national without, 9-15 digits in
//     groups joined by one separator used throughout (' ', '-' or '.'),
//     every group after the first at least 2 digits, in the North American
//     shape [1] NXX NXX XXXX (N is 2-9) or starting with the trunk prefix 0
//     ("020 7946 0958", "01 23 45 67 89", "030 1234567"), and not thousands
//     grouping ("0 000 000 000"). A national number joined by spaces may
//     not start right after "<digit> ", so the tail of a longer run of
//     numbers is not taken for one. A bare run of digits is never a phone
//     number, nor is anything of 16 or more digits, nor a local number
//     without its area code (555-2671).
//   - Card: 13-19 digits starting with 2-6 (the ranges of Visa, Mastercard,
//     American Express, Discover, Diners, JCB, UnionPay, Maestro), either
//     contiguous or a group of 4 followed by groups of 3-6 joined by one
//     separator used throughout (' ' or '-'), that pass the Luhn check.
//     If groups run on past a valid card, the longest valid prefix of whole
//     groups is the card. A Luhn-invalid number is not a card; whether it
//     is a phone number is decided by the phone rule alone (so 16 or more
//     digits never are).
//   - IPv4: a dotted quad, each part 1-3 digits of value 0-255 (leading
//     zeros allowed). A port ":8080", a prefix length "/24" or a list
//     ",10.0.0.2" may follow; a fifth ".digit" may not (1.2.3.4.5 is left
//     alone, as is v1.2.3.4).
//   - IPv6: the RFC 4291 text forms, eight groups of 1-4 hex digits joined
//     by ':', or fewer around one "::", the last 32 bits optionally a
//     dotted quad (::ffff:192.0.2.128), then optionally a zone "%eth0"; a
//     prefix length "/32" may follow. A compressed address must contain a
//     decimal digit, so a::b, Foo::Bar and dead::beef are left alone.
//     Times (10:30:00) and MAC addresses (00:1a:2b:3c:4d:5e: six groups,
//     no "::") do not match: the protocol does not list MAC addresses.
//   - IBAN: in capitals, two letters, two check digits and 11-30 letters or
//     digits, 15-34 characters, contiguous or in the print form of groups
//     of four joined by single spaces (the last 1-4), whose ISO 13616 check
//     holds (the characters read with the first four moved to the end,
//     letters as 10-35, form a number that is 1 mod 97). If groups run on,
//     the longest valid prefix of whole groups is the IBAN.
//
// # Boundaries
//
// A number, address or IBAN does not start inside a longer token: not after
// a letter, digit, '_' or '@'; not after '.', '-' or '/' that follow a
// letter or digit; not after ':' that follows a digit or ':'; not after ','
// that follows a digit. Symmetrically it does not end before a letter,
// digit, '_' or '@', nor before '.', '-' or '/' followed by a letter or
// digit, nor before ':' or ',' followed by a digit (an IPv4 address may be
// followed by ":port", "/len" and ",next"; an IPv6 address by "/len").
// Boundaries are judged on the text as scrubbed so far: the bytes of a
// previous match read as the ']' that ends its marker. A '[' after a
// separator that follows a match counts as the letter or digit a marker may
// have replaced, so "1:2:3:4:5:6:7:cafe:10.0.0.1" (eight groups and more)
// stays as scrubbed on a second pass.
//
// # Precedence
//
// Matches are found left to right and never overlap: the leftmost match
// wins; of matches starting at one byte, the longest; of equal length, the
// more specific, in the order email, iban, card, ip, phone (192.168.10.100
// is an IP address, not a phone number). An e-mail address covers any
// number inside its local part (415-555-2671@example.com is one [email]).
//
// A second pass over the result usually finds nothing, but not always: a
// candidate refused because it ran on (a phone number past 15 digits) can
// fit once a match in its tail has become a marker. In
// "+0000000000000 3782 822463 10005" the 17 digits are no phone number,
// the card at the end is replaced, and a second pass reads a 13-digit
// phone number in "+0000000000000 [card]". Markers themselves never match.
//
// # Meta values
//
// Msgpack and JSON walk one encoded value (at most MaxDepth levels of
// arrays and maps) and scrub every string in it, map keys included, with
// the rules above; n counts matches over all strings. Nothing else changes:
// numbers, bools, nil/null, msgpack bin and ext values, JSON whitespace and
// unchanged strings are copied byte for byte, so with n == 0 the output
// equals the input. A changed msgpack string gets the shortest str header
// for its new length; a changed JSON string is unescaped, scrubbed and
// escaped again. Malformed or too deep input is an error wrapping
// ErrMalformed or ErrDepth, never a panic; nothing is appended to dst then.
//
// # Concurrency and allocation
//
// Every function is pure and safe for concurrent use. Scanning is linear in
// the input: each recognizer reads a bounded stretch from where it starts,
// and the e-mail rule caches the run and domain it read. Append, Msgpack
// and JSON allocate nothing when dst has room for the result (Append's is
// at most len(src) + n·MaxMarkerLen bytes; JSON needs room for three copies
// of a changed string that holds escapes); String returns its argument
// without allocating when nothing matched, and allocates the result once
// otherwise.
package scrub
