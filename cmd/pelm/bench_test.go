package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchVerb runs `pelm bench` as a user would, everything in-process
// (embedded server on a free port, a temporary data directory, the
// processor), and reads what it leaves: the table, the JSON and the plot.
func TestBenchVerb(t *testing.T) {
	dir := t.TempDir()
	jsonPath, plotPath := filepath.Join(dir, "b.json"), filepath.Join(dir, "b.png")
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, []string{"bench", "--dim", "8", "--preload", "100", "--rates", "100", "--duration", "500ms",
		"--warmup", "200ms", "--max-p99", "2s", "--nats-sync", "1m", "--json", jsonPath, "--plot", plotPath}, nil, &out, &errOut)
	if err != nil {
		t.Fatalf("pelm bench: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"offered/s", "pelm/echo", "ancestor target", "targets", "figures: " + jsonPath, "plot: " + plotPath} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "pelm rate 100/s") {
		t.Errorf("no progress on stderr:\n%s", errOut.String())
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Settings map[string]any `json:"settings"`
		Steps    []struct {
			System  string `json:"system"`
			Kind    string `json:"kind"`
			Sent    int64  `json:"sent"`
			Results int64  `json:"results"`
			Errors  int64  `json:"errors"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Settings["dim"] != 8.0 || rep.Settings["in_process"] != true {
		t.Errorf("settings: %v", rep.Settings)
	}
	rates := 0
	for _, s := range rep.Steps {
		if s.Kind == "rate" {
			rates++
		}
		if s.Results != s.Sent || s.Errors != 0 {
			t.Errorf("%s %s: %d sent, %d results, %d errors", s.System, s.Kind, s.Sent, s.Results, s.Errors)
		}
	}
	if rates != 2 {
		t.Errorf("%d rate steps, want pelm's and the echo's", rates)
	}
	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("plot: %v", err)
	}
}

// TestBenchFlags: bad flags are refused, each with an error that names
// the flag, before anything runs.
func TestBenchFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "bad mix", args: []string{"--mix", "store=x"}, wantErr: "--mix"},
		{name: "bad phases", args: []string{"--phases", "night"}, wantErr: "--phases"},
		{name: "bad rate", args: []string{"--rates", "100,fast"}, wantErr: "--rates"},
		{name: "nothing to measure", args: []string{"--rates", ""}, wantErr: "nothing to measure"},
		{name: "bad dim", args: []string{"--dim", "0"}, wantErr: "--dim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errOut bytes.Buffer
			err := run(context.Background(), append([]string{"bench"}, tt.args...), nil, &bytes.Buffer{}, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("pelm bench %v: error %v, want one about %s", tt.args, err, tt.wantErr)
			}
		})
	}
}
