package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cli runs one verb as a user would and returns its stdout as a JSON map.
func cli(t *testing.T, stdin string, args ...string) map[string]any {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, args, strings.NewReader(stdin), &out, &errOut); err != nil {
		t.Fatalf("pelm %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("pelm %s printed %q: %v", strings.Join(args, " "), out.String(), err)
	}
	return m
}

// TestServeAndClientVerbs runs `pelm serve` with its embedded server and
// drives it with the client verbs, as the README's walk-through does.
func TestServeAndClientVerbs(t *testing.T) {
	port, httpPort := freePort(t), freePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	web := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--nats-listen", "127.0.0.1:" + strconv.Itoa(port),
			"--http-listen", "127.0.0.1:" + strconv.Itoa(httpPort), "--pprof",
			"--data-dir", t.TempDir(), "--dim", "3", "--log-level", "warn"}, nil, io.Discard, io.Discard)
	}()
	u := "--nats-url=" + url
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out bytes.Buffer
		err := run(context.Background(), []string{"store", u, "--memory", "notes", "--vector", "[1,0,0]", "--phase", "0.5",
			"--id", "alpha", "--meta", `{"title":"first"}`, "--timeout", "2s"}, nil, &out, io.Discard)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never answered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := cli(t, "[0.9, 0.1, 0]", "store", u, "--memory", "notes", "--phase", "0.55", "--id", "beta"); r["accepted"] != true || r["id"] != "beta" {
		t.Errorf("store from stdin: %v", r)
	}
	if r := cli(t, `{"vector": [0, 1, 0], "phase": 0.2, "id": "ignored"}`, "store", u, "--memory", "notes", "--phase", "0.95", "--id", "gamma"); r["id"] != "gamma" {
		t.Errorf("store with a request object on stdin, overridden by flags: %v", r)
	}
	r := cli(t, "", "retrieve", u, "--memory", "notes", "--vector", "[1, 0.05, 0]", "--phase", "0.5", "--top-k", "3")
	matches, _ := r["matches"].([]any)
	if len(matches) != 2 || matches[0].(map[string]any)["id"] != "alpha" || matches[1].(map[string]any)["id"] != "beta" {
		t.Fatalf("retrieve: %v", r)
	}
	if meta := matches[0].(map[string]any)["meta"].(map[string]any); meta["title"] != "first" {
		t.Errorf("meta: %v", meta)
	}
	if r := cli(t, "", "process", u, "--memory", "notes", "--vector", "[0.8,0.2,0]", "--phase", "0.5", "--text", "we help and support each other"); r["accepted"] != true || r["moral"] != 0.9 {
		t.Errorf("process: %v", r)
	}
	if r := cli(t, "", "forget", u, "--memory", "notes", "--id", "beta"); r["found"] != true {
		t.Errorf("forget: %v", r)
	}
	if r := cli(t, "", "retrieve", u, "--memory", "notes", "--vector", "[1,2,3,4]", "--phase", "0.5"); r["ok"] != false ||
		r["error"].(map[string]any)["code"] != "bad_dimension" {
		t.Errorf("retrieve with a wrong dimension: %v", r)
	}
	// A memory of its own settings, its info, its drop.
	if r := cli(t, "", "create", u, "--memory", "wide", "--dim", "5", "--capacity", "9", "--eviction", "confidence", "--scrub"); r["ok"] != true ||
		r["config"].(map[string]any)["dim"] != 5.0 || r["config"].(map[string]any)["scrub"] != true {
		t.Errorf("create: %v", r)
	}
	if r := cli(t, "", "store", u, "--memory", "wide", "--vector", "[1,2,3,4,5]", "--phase", "0.5", "--text", "ann@example.com"); r["scrubbed"] != 1.0 {
		t.Errorf("store into the scrubbing memory: %v", r)
	}
	if r := cli(t, "", "info", u, "--memory", "wide"); r["size"] != 1.0 || r["config"].(map[string]any)["capacity"] != 9.0 {
		t.Errorf("info: %v", r)
	}
	// pelm memories: every memory once its state is written (about a second).
	for until := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var out bytes.Buffer
		err := run(context.Background(), []string{"memories", u}, nil, &out, io.Discard)
		if err == nil && strings.Contains(out.String(), "notes ") && regexp.MustCompile(`wide +1 +9 +5 +confidence +0 +true`).MatchString(out.String()) {
			break
		}
		if time.Now().After(until) {
			t.Fatalf("pelm memories: %v\n%s", err, out.String())
		}
	}
	if r := cli(t, "", "drop", u, "--memory", "wide"); r["found"] != true {
		t.Errorf("drop: %v", r)
	}
	if r := cli(t, "", "info", u, "--memory", "wide"); r["ok"] != false || r["error"].(map[string]any)["code"] != "not_found" {
		t.Errorf("info after drop: %v", r)
	}
	// What an operator sees over HTTP.
	if code, _ := httpGet(t, web+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := httpGet(t, web+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d while serving", code)
	}
	if code, body := httpGet(t, web+"/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("--pprof: /debug/pprof/heap answered %d", code)
	}
	// A batch's series are updated after its results go out: poll.
	for until := time.Now().Add(10 * time.Second); ; {
		_, body := httpGet(t, web+"/metrics")
		if strings.Contains(body, "pelm_dead_letters_total 2") || time.Now().After(until) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, body := httpGet(t, web+"/metrics")
	for _, want := range []string{
		`pelm_requests_total{memory="notes",op="store",outcome="ok"} 3`,
		`pelm_requests_total{memory="notes",op="retrieve",outcome="error"} 1`,
		`pelm_requests_total{memory="notes",op="forget",outcome="ok"} 1`,
		`pelm_memory_items{memory="notes"} 3`,
		`pelm_memory_capacity_items{memory="notes"} 20000`,
		`pelm_request_duration_seconds_count{stage="total"}`,
		`pelm_batch_size_count`,
		`pelm_dead_letters_total 2`, // the retrieve of a wrong dimension, the info of a dropped memory
		`pelm_ready 1`,
		`process_resident_memory_bytes`,
		`go_gc_duration_seconds`,
		`pelm_materialize_failures_total 0`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	// Idle, the journal is materialised into the per-item state and purged
	// behind it: about a second, plus the acks' confirmation.
	for until := time.Now().Add(15 * time.Second); ; {
		_, body = httpGet(t, web+"/metrics")
		if strings.Contains(body, "pelm_journal_records 0") && strings.Contains(body, "pelm_materialize_epochs_waiting 0") {
			break
		}
		if time.Now().After(until) {
			t.Errorf("the journal was not purged while idle:\n%s", grepLines(body, "pelm_journal_records", "pelm_materialize"))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve returned %v after its context was cancelled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20s of SIGTERM's equivalent")
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestParseFlagsEnvironment(t *testing.T) {
	t.Setenv("PELM_BATCH_MAX", "512")
	t.Setenv("PELM_DIM", "8")
	t.Setenv("NATS_URL", "nats://example:4222")
	fs, f := serveFlagSet(io.Discard)
	if err := parseFlags(fs, []string{"--dim", "16"}); err != nil {
		t.Fatal(err)
	}
	if f.batchMax != 512 || f.dim != 16 || f.natsURL != "nats://example:4222" {
		t.Errorf("batch-max %d (want 512 from env), dim %d (want 16: the flag wins), nats-url %q", f.batchMax, f.dim, f.natsURL)
	}
	t.Setenv("PELM_CAPACITY", "lots")
	fs, _ = serveFlagSet(io.Discard)
	if err := parseFlags(fs, nil); err == nil || !strings.Contains(err.Error(), "PELM_CAPACITY") {
		t.Errorf("a bad PELM_CAPACITY gave %v", err)
	}
}

func TestServeConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", args: nil},
		{name: "zero tolerance and wait are values", args: []string{"--tolerance", "0", "--batch-wait", "0"}},
		{name: "eviction", args: []string{"--eviction", "lru"}, wantErr: "lru"},
		{name: "dimension", args: []string{"--dim", "5000"}, wantErr: "dim"},
		{name: "threshold", args: []string{"--filter-threshold", "0.95"}, wantErr: "threshold"},
		{name: "reply-allow", args: []string{"--reply-allow", "a..b"}, wantErr: "reply-allow"},
		{name: "prefix", args: []string{"--prefix", "$SYS"}, wantErr: "prefix"},
		{name: "top-k", args: []string{"--top-k", "0"}, wantErr: "positive"},
		{name: "negative tolerance", args: []string{"--tolerance", "-1"}, wantErr: "tolerance"},
		{name: "zero threshold", args: []string{"--filter-threshold", "0"}, wantErr: "threshold"},
		{name: "sync", args: []string{"--nats-sync", "sometimes"}, wantErr: "nats-sync"},
		{name: "sync interval", args: []string{"--nats-sync", "2m"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, f := serveFlagSet(io.Discard)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.config(zerolog.Nop())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.name == "zero tolerance and wait are values" && (cfg.Tolerance >= 0 || cfg.Batch.MaxWait >= 0) {
					t.Errorf("0 became a default: tolerance %v, wait %v", cfg.Tolerance, cfg.Batch.MaxWait)
				}
				return
			}
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.wantErr) {
				t.Errorf("error %v, want one that mentions %q", err, tc.wantErr)
			}
		})
	}
}

func TestUnknownVerb(t *testing.T) {
	err := run(context.Background(), []string{"frobnicate"}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("got %v", err)
	}
	if err := run(context.Background(), []string{"serve", "-h"}, nil, io.Discard, io.Discard); err != flag.ErrHelp {
		t.Errorf("serve -h: %v", err)
	}
}

func decodeJSONMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return m
}

// grepLines returns the lines of text that contain any of subs.
func grepLines(text string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
