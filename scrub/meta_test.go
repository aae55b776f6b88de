package scrub

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func mp(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMsgpack(t *testing.T) {
	long := strings.Repeat("x", 300) + " a@example.com"
	tests := []struct {
		name    string
		input   []byte
		want    any // decoded; nil with wantErr
		wantN   int
		wantErr error
	}{
		{name: "string", input: mp(t, "mail a@example.com"), want: "mail [email]", wantN: 1},
		{name: "untouched string", input: mp(t, "nothing"), want: "nothing"},
		{name: "map keys and values",
			input: mp(t, map[string]any{"a@example.com": "from 10.0.0.1", "n": 42}),
			want:  map[string]any{"[email]": "from [ip]", "n": int8(42)}, wantN: 2},
		{name: "nested",
			input: mp(t, map[string]any{"l": []any{"x", []any{"+44 20 7946 0958", true, nil, 1.5}}}),
			want:  map[string]any{"l": []any{"x", []any{"[phone]", true, nil, 1.5}}}, wantN: 1},
		{name: "string grows past fixstr", input: mp(t, strings.Repeat("::1 ", 8)), want: strings.Repeat("[ip] ", 8), wantN: 8},
		{name: "str8 shrinks to fixstr", input: mp(t, "4111 1111 1111 1111 and more text"), want: "[card] and more text", wantN: 1},
		{name: "str16", input: mp(t, long), want: strings.Repeat("x", 300) + " [email]", wantN: 1},
		{name: "bin is not text", input: mp(t, []byte("a@example.com")), want: []byte("a@example.com")},
		{name: "scalars", input: mp(t, []any{int64(-1 << 40), uint64(1 << 63), float32(1.5), false}),
			want: []any{int64(-1 << 40), uint64(1 << 63), float32(1.5), false}},
		{name: "empty map", input: []byte{0x80}, want: map[string]any{}},
		{name: "fixext", input: []byte{0x92, 0xd4, 0x01, 0x02, 0xa3, ':', ':', '1'}, wantN: 1},
		{name: "truncated", input: []byte{0x92, 0xa1}, wantErr: ErrMalformed},
		{name: "truncated str32 header", input: []byte{0xdb, 0, 0}, wantErr: ErrMalformed},
		{name: "huge length", input: []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, wantErr: ErrMalformed},
		{name: "huge array", input: []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, wantErr: ErrMalformed},
		{name: "never used", input: []byte{0xc1}, wantErr: ErrMalformed},
		{name: "trailing", input: []byte{0xc0, 0xc0}, wantErr: ErrMalformed},
		{name: "empty", input: nil, wantErr: ErrMalformed},
		{name: "depth 32", input: append(bytes.Repeat([]byte{0x91}, 32), 0xc0), want: nest(32)},
		{name: "depth 33", input: append(bytes.Repeat([]byte{0x91}, 33), 0xc0), wantErr: ErrDepth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("dst")
			out, n, err := Msgpack(prefix, tt.input)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Msgpack(% x) error = %v, want %v", tt.input, err, tt.wantErr)
			}
			if err != nil {
				if string(out) != "dst" || n != 0 {
					t.Fatalf("on error Msgpack returned %q, %d", out, n)
				}
				return
			}
			if !bytes.HasPrefix(out, prefix) || n != tt.wantN {
				t.Fatalf("Msgpack(% x) = % x, %d; want prefix and n = %d", tt.input, out, n, tt.wantN)
			}
			out = out[len(prefix):]
			if n == 0 && !bytes.Equal(out, tt.input) {
				t.Fatalf("Msgpack(% x) = % x with no match", tt.input, out)
			}
			if tt.want == nil {
				return
			}
			var got any
			if err := msgpack.Unmarshal(out, &got); err != nil {
				t.Fatalf("output % x does not decode: %v", out, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded %#v, want %#v", got, tt.want)
			}
		})
	}
}

func nest(d int) any {
	var v any
	for range d {
		v = []any{v}
	}
	return v
}

func TestMsgpackShortestHeader(t *testing.T) {
	// A str16 header on a short string stays when nothing changes and is
	// replaced by a fixstr when the string changes.
	plain := []byte{0xda, 0, 2, 'h', 'i'}
	if out, n, err := Msgpack(nil, plain); err != nil || n != 0 || !bytes.Equal(out, plain) {
		t.Fatalf("Msgpack(% x) = % x, %d, %v", plain, out, n, err)
	}
	ip := []byte{0xda, 0, 3, ':', ':', '1'}
	want := []byte{0xa4, '[', 'i', 'p', ']'}
	if out, n, err := Msgpack(nil, ip); err != nil || n != 1 || !bytes.Equal(out, want) {
		t.Fatalf("Msgpack(% x) = % x, %d, %v; want % x", ip, out, n, err, want)
	}
}

func TestJSON(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    string
		wantN   int
		wantErr error
	}{
		{name: "string", input: `"mail a@example.com"`, want: `"mail [email]"`, wantN: 1},
		{name: "object keys and values", input: `{"a@example.com": "from 10.0.0.1", "n": 42}`,
			want: `{"[email]": "from [ip]", "n": 42}`, wantN: 2},
		{name: "nested and whitespace kept", input: " [\n\t\"x\", [\"+44 20 7946 0958\", true, null, -1.5e+3] ]\r\n",
			want: " [\n\t\"x\", [\"[phone]\", true, null, -1.5e+3] ]\r\n", wantN: 1},
		{name: "unchanged escapes kept", input: `"caf\u00e9 \"x\" \/"`, want: `"caf\u00e9 \"x\" \/"`},
		{name: "escaped at sign", input: `"john\u0040example.com"`, want: `"[email]"`, wantN: 1},
		{name: "escapes re-escaped", input: `"a\tb \"q\" \\ \u0001 \/ caf\u00e9 \ud83d\ude00 ::1\n"`,
			want: "\"a\\tb \\\"q\\\" \\\\ \\u0001 / café 😀 [ip]\\n\"", wantN: 1},
		{name: "lone surrogate", input: `"\ud800 ::1"`, want: "\"\uFFFD [ip]\"", wantN: 1},
		{name: "non-ASCII", input: `{"メール":"連絡jean@exemple.fr"}`, want: `{"メール":"連絡[email]"}`, wantN: 1},
		{name: "numbers are not text", input: `[4111111111111111, 0, -0.5, 1E9]`, want: `[4111111111111111, 0, -0.5, 1E9]`},
		{name: "empty containers", input: `{"a":{},"b":[]}`, want: `{"a":{},"b":[]}`},
		{name: "unterminated", input: `"abc`, wantErr: ErrMalformed},
		{name: "bad escape", input: `"\x"`, wantErr: ErrMalformed},
		{name: "short unicode escape", input: `"\u12"`, wantErr: ErrMalformed},
		{name: "control character", input: "\"a\nb\"", wantErr: ErrMalformed},
		{name: "trailing comma", input: `[1,]`, wantErr: ErrMalformed},
		{name: "missing colon", input: `{"a" 1}`, wantErr: ErrMalformed},
		{name: "key not a string", input: `{1:2}`, wantErr: ErrMalformed},
		{name: "bad literal", input: `tru`, wantErr: ErrMalformed},
		{name: "leading zero", input: `01`, wantErr: ErrMalformed},
		{name: "bare minus", input: `-`, wantErr: ErrMalformed},
		{name: "two values", input: `1 2`, wantErr: ErrMalformed},
		{name: "empty", input: ``, wantErr: ErrMalformed},
		{name: "only space", input: `  `, wantErr: ErrMalformed},
		{name: "depth 32", input: strings.Repeat("[", 32) + strings.Repeat("]", 32), want: strings.Repeat("[", 32) + strings.Repeat("]", 32)},
		{name: "depth 33", input: strings.Repeat("[", 33) + strings.Repeat("]", 33), wantErr: ErrDepth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, n, err := JSON([]byte("dst"), []byte(tt.input))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("JSON(%q) error = %v, want %v", tt.input, err, tt.wantErr)
			}
			if err != nil {
				if string(out) != "dst" || n != 0 {
					t.Fatalf("on error JSON returned %q, %d", out, n)
				}
				if json.Valid([]byte(tt.input)) && !errors.Is(err, ErrDepth) {
					t.Fatalf("JSON(%q) refused input encoding/json accepts", tt.input)
				}
				return
			}
			if got := string(out[3:]); got != tt.want || n != tt.wantN {
				t.Fatalf("JSON(%q) = %q, %d; want %q, %d", tt.input, got, n, tt.want, tt.wantN)
			}
			if !json.Valid(out[3:]) {
				t.Fatalf("JSON(%q) = %q is not valid JSON", tt.input, out[3:])
			}
		})
	}
}

func TestMetaAllocs(t *testing.T) {
	m := mp(t, map[string]any{"who": "a@example.com", "ip": "10.0.0.1", "n": 3, "l": []any{"x", "::1"}})
	j := []byte(`{"who":"a\u0040example.com","ip":"10.0.0.1","n":3,"l":["x","::1"]}`)
	dst := make([]byte, 0, 4096)
	if a := testing.AllocsPerRun(100, func() { Msgpack(dst, m) }); a != 0 {
		t.Errorf("Msgpack with room allocates %v times", a)
	}
	if a := testing.AllocsPerRun(100, func() { JSON(dst, j) }); a != 0 {
		t.Errorf("JSON with room allocates %v times", a)
	}
}
