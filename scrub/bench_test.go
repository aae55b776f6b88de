package scrub

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchText returns about size bytes of prose, with one piece of personal
// data in every sentence when pii is set (about one per 150 bytes).
func benchText(size int, pii bool) []byte {
	plain := []string{
		"The meeting moved to Thursday at 10:30, after version 2.15.3 shipped. ",
		"Revenue grew 3.5% to 1,000,000 units in 2026, per the report of 12.03.2026. ",
		"Ünïcode façade: 東京の会議は午後です, and the café served crêpes. ",
		"She asked whether the cache on port 8080 was warm before the demo. ",
	}
	data := []string{
		"Write to jane.doe+work@mail.example.co.uk about the invoice. ",
		"Call +44 20 7946 0958 or (415) 555-2671 before noon. ",
		"Card 4111 1111 1111 1111 was charged from 203.0.113.7 today. ",
		"Wire it to GB82 WEST 1234 5698 7654 32 via 2001:db8::42 now. ",
	}
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		b.WriteString(plain[i%len(plain)])
		if pii {
			b.WriteString(data[i%len(data)])
		}
	}
	return []byte(b.String()[:size])
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, pii := range []bool{false, true} {
			name := fmt.Sprintf("size=%dKiB/pii=%v", size>>10, pii)
			b.Run(name, func(b *testing.B) {
				src := benchText(size, pii)
				dst := make([]byte, 0, 2*size)
				_, n := Append(nil, src)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					Append(dst, src)
				}
				b.ReportMetric(float64(n), "matches/op")
			})
		}
	}
}

func BenchmarkString(b *testing.B) {
	for _, pii := range []bool{false, true} {
		b.Run(fmt.Sprintf("size=1KiB/pii=%v", pii), func(b *testing.B) {
			s := string(benchText(1<<10, pii))
			b.SetBytes(int64(len(s)))
			b.ReportAllocs()
			for b.Loop() {
				String(s)
			}
		})
	}
}

// benchMeta is a meta value of about 1 KiB with personal data in keys,
// values and nested arrays.
func benchMeta() any {
	return map[string]any{
		"source":  "support-chat",
		"turn":    17,
		"score":   0.93,
		"contact": map[string]any{"email": "jane.doe@example.com", "phone": "+1 (415) 555-2671", "verified": true},
		"history": []any{
			string(benchText(300, true)),
			string(benchText(300, false)),
			map[string]any{"ip": "203.0.113.7", "ua": "Mozilla/5.0 (X11; Linux x86_64)"},
		},
		"a@example.com": []any{1, 2, 3, "::1"},
	}
}

func BenchmarkMsgpack(b *testing.B) {
	src := mp(b, benchMeta())
	dst := make([]byte, 0, 2*len(src))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		Msgpack(dst, src)
	}
}

func BenchmarkJSON(b *testing.B) {
	src, err := json.Marshal(benchMeta())
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 3*len(src))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		JSON(dst, src)
	}
}
