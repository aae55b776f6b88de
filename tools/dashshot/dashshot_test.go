package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// The files of the repository the tests read (the test runs in tools/dashshot).
var (
	dashboardFile  = filepath.Join("..", "..", "deploy", "grafana", "dashboards", "pelm.json")
	datasourceFile = filepath.Join("..", "..", "deploy", "grafana", "provisioning", "datasources", "prometheus.yml")
	metricsFile    = filepath.Join("..", "..", "processor", "metrics.go")
	outcomeFile    = filepath.Join("..", "..", "wire", "outcome.go") // outcome label values (Outcome.Kind)
	httpFile       = filepath.Join("..", "..", "cmd", "pelm", "http.go")
)

func readDashboard(t *testing.T) *dashboard {
	t.Helper()
	f, err := os.Open(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := parseDashboard(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDashboardShape checks the dashboard JSON the way Grafana would take it:
// a uid, a schema version of Grafana 11 and 12, every panel on the grid with
// queries on the provisioned data source, and the panels issue 7 asks for.
func TestDashboardShape(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed for a provisioned dashboard", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 || d.SchemaVersion > 42 {
		t.Errorf("schemaVersion %d: want 36 to 42 (Grafana 9 to 12 read it without migrating datasource refs)", d.SchemaVersion)
	}
	m := regexp.MustCompile(`(?m)^\s*uid:\s*(\S+)\s*$`).FindStringSubmatch(readFile(t, datasourceFile))
	if m == nil {
		t.Fatalf("%s: no uid", datasourceFile)
	}
	uid := m[1]

	// Every top-level value parses (json.Unmarshal into our structs would
	// accept a misspelt field).
	var raw map[string]any
	if err := json.Unmarshal([]byte(readFile(t, dashboardFile)), &raw); err != nil {
		t.Fatal(err)
	}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	for _, p := range d.graphs() {
		t.Run(p.Title, func(t *testing.T) {
			if p.Title == "" {
				t.Error("no title")
			}
			if ids[p.ID] {
				t.Errorf("id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Type != "timeseries" {
				t.Errorf("type %q: dashshot draws time series, and so the screenshot matches only those", p.Type)
			}
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > gridColumns {
				t.Errorf("gridPos %+v outside the %d-column grid", g, gridColumns)
			}
			for x := g.X; x < g.X+g.W; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					if other, ok := cells[[2]int{x, y}]; ok {
						t.Errorf("overlaps %q at column %d, row %d", other, x, y)
					}
					cells[[2]int{x, y}] = p.Title
				}
			}
			if p.Datasource == nil || p.Datasource.UID != uid || p.Datasource.Type != "prometheus" {
				t.Errorf("datasource %+v, want the provisioned prometheus uid %q", p.Datasource, uid)
			}
			if len(p.queries()) == 0 {
				t.Fatal("no queries")
			}
			refs := map[string]bool{}
			for _, q := range p.Targets {
				if refs[q.RefID] || q.RefID == "" {
					t.Errorf("refId %q empty or used twice", q.RefID)
				}
				refs[q.RefID] = true
				if q.Datasource != nil && q.Datasource.UID != uid {
					t.Errorf("query %s: datasource %+v, want uid %q", q.RefID, q.Datasource, uid)
				}
				if _, err := expand(q.Expr, queryVars{step: 5 * time.Second, rateInterval: 20 * time.Second, rng: time.Hour}); err != nil {
					t.Errorf("query %s: %v", q.RefID, err)
				}
				if strings.Count(q.Expr, "(") != strings.Count(q.Expr, ")") || strings.Count(q.Expr, "{") != strings.Count(q.Expr, "}") {
					t.Errorf("query %s: unbalanced brackets: %s", q.RefID, q.Expr)
				}
			}
			if p.FieldConfig.Defaults.Unit == "" {
				t.Error("no unit")
			}
		})
	}

	// What issue 7 asks the dashboard to show.
	var all []string
	for _, p := range d.graphs() {
		for _, q := range p.queries() {
			all = append(all, q.Expr)
		}
	}
	quantileRE := regexp.MustCompile(`histogram_quantile\(\s*([0-9.]+)`)
	for _, stage := range []string{"queue", "process", "total"} {
		var got []float64
		for _, e := range all {
			if strings.Contains(e, `pelm_request_duration_seconds_bucket{stage="`+stage+`"}`) {
				for _, m := range quantileRE.FindAllStringSubmatch(e, -1) {
					v, _ := strconv.ParseFloat(m[1], 64)
					got = append(got, v)
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, []float64{0.5, 0.95, 0.99}) {
			t.Errorf("latency of stage %s: quantiles %v, want p50, p95, p99", stage, got)
		}
	}
	used := map[string]bool{}
	for _, e := range all {
		for _, n := range metricNames(e) {
			used[n] = true
		}
	}
	for _, want := range []string{
		"pelm_requests_total", "pelm_batch_size_sum", "pelm_batch_size_count",
		"pelm_consumer_pending_messages", "pelm_memory_items", "pelm_memory_filter_threshold",
		"process_resident_memory_bytes", "go_gc_duration_seconds",
	} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}

// TestDashboardMetricsExist checks that every series the dashboard queries
// is one pelm serves on /metrics: pelm's own (declared in processor/metrics.go)
// and those of the Go and process collectors cmd/pelm registers.
func TestDashboardMetricsExist(t *testing.T) {
	src := readFile(t, metricsFile)
	known := map[string]bool{"up": true} // Prometheus' own, per target
	optsRE := regexp.MustCompile(`(Counter|Gauge|Histogram|Summary)Opts\{\s*Name:\s*"(pelm_\w+)"`)
	for _, m := range optsRE.FindAllStringSubmatch(src, -1) {
		known[m[2]] = true
		switch m[1] {
		case "Histogram":
			known[m[2]+"_bucket"], known[m[2]+"_sum"], known[m[2]+"_count"] = true, true, true
		case "Summary":
			known[m[2]+"_sum"], known[m[2]+"_count"] = true, true
		}
	}
	for _, m := range regexp.MustCompile(`memoryGauge\("(pelm_\w+)"`).FindAllStringSubmatch(src, -1) {
		known[m[1]] = true
	}
	if !known["pelm_request_duration_seconds_bucket"] || !known["pelm_memory_items"] || !known["pelm_ready"] {
		t.Fatalf("%s: found only %v; has the way metrics are declared changed?", metricsFile, known)
	}

	// The same collectors as cmd/pelm/http.go.
	if !strings.Contains(readFile(t, httpFile), "collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})") {
		t.Fatalf("%s no longer registers the default Go and process collectors: update this test", httpFile)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		n := mf.GetName()
		known[n] = true
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			known[n+"_bucket"], known[n+"_sum"], known[n+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			known[n+"_sum"], known[n+"_count"] = true, true
		}
	}

	labelSrc := src + readFile(t, outcomeFile)
	labelRE := regexp.MustCompile(`\b(stage|outcome|op)\s*=~?\s*"([^"]*)"`)
	for _, p := range readDashboard(t).graphs() {
		for _, q := range p.queries() {
			names := metricNames(q.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q, query %s: no metric found in %s", p.Title, q.RefID, q.Expr)
			}
			for _, n := range names {
				if !known[n] {
					t.Errorf("panel %q, query %s: pelm does not export %s", p.Title, q.RefID, n)
				}
			}
			// Label values of pelm's own labels are ones the processor sets.
			for _, m := range labelRE.FindAllStringSubmatch(q.Expr, -1) {
				for v := range strings.SplitSeq(m[2], "|") {
					if !strings.Contains(labelSrc, `"`+v+`"`) {
						t.Errorf("panel %q, query %s: %s=%q is not a value %s or %s sets", p.Title, q.RefID, m[1], v, metricsFile, outcomeFile)
					}
				}
			}
		}
	}
}

// metricNames returns the metric names a PromQL expression selects: the
// identifiers that are not functions, keywords, label names or numbers.
func metricNames(expr string) []string {
	s := regexp.MustCompile(`"(?:[^"\\]|\\.)*"`).ReplaceAllString(expr, `""`)
	s = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(s, " ")
	s = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(s, " ")
	s = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(s, " ")
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true, "by": true, "without": true}
	identRE := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	var out []string
	for _, loc := range identRE.FindAllStringIndex(s, -1) {
		if loc[0] > 0 && strings.ContainsAny(s[loc[0]-1:loc[0]], "0123456789.") {
			continue // an exponent: 100e6
		}
		name := s[loc[0]:loc[1]]
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") || keywords[strings.ToLower(name)] {
			continue
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		name, expr string
		want       []string
	}{
		{"quantile", `histogram_quantile(0.95, sum by (le) (rate(pelm_request_duration_seconds_bucket{stage="total"}[5m])))`, []string{"pelm_request_duration_seconds_bucket"}},
		{"ratio", `sum(rate(pelm_requests_total{outcome=~"error|rejected"}[1m])) / sum(rate(pelm_requests_total[1m]))`, []string{"pelm_requests_total", "pelm_requests_total"}},
		{"exponent", `delta(process_resident_memory_bytes{job="pelm"}[10m]) > 100e6`, []string{"process_resident_memory_bytes"}},
		{"or", `pelm_ready == 0 or up{job="pelm"} == 0`, []string{"pelm_ready", "up"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("metricNames(%s) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	v := queryVars{step: 5 * time.Second, rateInterval: 20 * time.Second, rng: 15 * time.Minute}
	tests := []struct {
		name, expr, want string
		wantErr          bool
	}{
		{name: "rate interval", expr: `rate(x[$__rate_interval])`, want: `rate(x[20s])`},
		{name: "braces", expr: `rate(x[${__rate_interval}]) + y[${__interval}]`, want: `rate(x[20s]) + y[5s]`},
		{name: "range", expr: `increase(x[$__range])`, want: `increase(x[900s])`},
		{name: "none", expr: `up`, want: `up`},
		{name: "unknown built-in", expr: `x[$__auto]`, wantErr: true},
		{name: "template variable", expr: `x{job="$job"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expand(tt.expr, v)
			if (err != nil) != tt.wantErr {
				t.Fatalf("expand(%q) error %v, wantErr %v", tt.expr, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
	if got := grafanaRateInterval(5*time.Second, 5*time.Second); got != 20*time.Second {
		t.Errorf("grafanaRateInterval(5s, 5s) = %s, want 20s", got)
	}
	if got := grafanaRateInterval(time.Minute, 5*time.Second); got != 65*time.Second {
		t.Errorf("grafanaRateInterval(1m, 5s) = %s, want 1m5s", got)
	}
}

func TestLegendAndUnits(t *testing.T) {
	labels := map[string]string{"__name__": "pelm_memory_items", "memory": "notes", "job": "pelm"}
	for _, tt := range []struct{ format, want string }{
		{"{{memory}}", "notes"},
		{"{{ memory }} of {{job}}", "notes of pelm"},
		{"p95", "p95"},
		{"", `pelm_memory_items{job="pelm", memory="notes"}`},
	} {
		if got := legend(tt.format, labels); got != tt.want {
			t.Errorf("legend(%q) = %q, want %q", tt.format, got, tt.want)
		}
	}
	for _, tt := range []struct {
		unit string
		v    float64
		want string
	}{
		{"s", 0.15, "150 ms"},
		{"s", 0.00025, "250 µs"},
		{"s", 2.5, "2.5 s"},
		{"bytes", 256 << 20, "256 MiB"},
		{"percentunit", 0.02, "2%"},
		{"reqps", 1500, "1.5 K req/s"},
		{"short", 20000, "20 K"},
		{"short", 0.75, "0.75"},
	} {
		if got := formatValue(tt.unit, tt.v); got != tt.want {
			t.Errorf("formatValue(%q, %v) = %q, want %q", tt.unit, tt.v, got, tt.want)
		}
	}
}

// fakePrometheus answers /api/v1/query_range with made-up series: one per
// op, per memory, or a single one, as the query groups them, and nothing
// for the filter threshold (to draw a "No data" panel).
type fakePrometheus struct {
	t       *testing.T
	mu      sync.Mutex
	queries []string
	refuse  bool // answer every query with a bad_data error
}

func (f *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query_range" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		f.t.Errorf("fake prometheus: %v", err)
	}
	q := r.Form.Get("query")
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if f.refuse {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"status":"error","errorType":"bad_data","error":"1:1: parse error: unexpected end of input"}`)
		return
	}
	start, err1 := strconv.ParseInt(r.Form.Get("start"), 10, 64)
	end, err2 := strconv.ParseInt(r.Form.Get("end"), 10, 64)
	step, err3 := strconv.ParseFloat(r.Form.Get("step"), 64)
	if err1 != nil || err2 != nil || err3 != nil || step <= 0 || end <= start || strings.Contains(q, "$") {
		f.t.Errorf("fake prometheus: bad request %v", r.Form)
	}
	var sets []map[string]string
	switch {
	case strings.Contains(q, "filter_threshold"):
	case strings.Contains(q, "by (op)"):
		sets = []map[string]string{{"op": "store"}, {"op": "retrieve"}, {"op": "process"}}
	case strings.Contains(q, "pelm_memory"):
		sets = []map[string]string{{"__name__": "pelm_memory_items", "memory": "bench"}, {"__name__": "pelm_memory_items", "memory": "notes"}}
	default:
		sets = []map[string]string{{"instance": "pelm:8080", "job": "pelm"}}
	}
	type res struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	var out []res
	for i, labels := range sets {
		var vals [][2]any
		for ts := float64(start); ts <= float64(end); ts += step {
			v := strconv.FormatFloat(float64(i+1)*(1.2+math.Sin(ts/97)), 'g', -1, 64)
			if int(ts/step)%40 == 20 {
				v = "NaN" // a gap
			}
			vals = append(vals, [2]any{ts, v})
		}
		out = append(out, res{Metric: labels, Values: vals})
	}
	json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "matrix", "result": out}})
}

// TestRenderFromFakePrometheus draws the real dashboard from made-up series
// served by an in-process fake of Prometheus' API.
func TestRenderFromFakePrometheus(t *testing.T) {
	fake := &fakePrometheus{t: t}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "dash.png")
	var stderr strings.Builder
	err := run(context.Background(), []string{
		"--prometheus", srv.URL, "--dashboard", dashboardFile, "--out", out,
		"--range", "30m", "--end", "2026-01-02T15:04:05Z", "--width", "1200",
	}, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "no data") {
		t.Errorf("stderr %q: want a no-data warning for the filter threshold", stderr.String())
	}

	d := readDashboard(t)
	want := 0
	for _, p := range d.graphs() {
		want += len(p.queries())
	}
	if len(fake.queries) != want {
		t.Errorf("%d queries sent, want %d (every query of every panel)", len(fake.queries), want)
	}
	for _, q := range fake.queries {
		if !strings.Contains(q, "[") && strings.Contains(q, "rate(") {
			t.Errorf("query without a range: %s", q)
		}
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, p := range d.graphs() {
		rows = max(rows, p.GridPos.Y+p.GridPos.H)
	}
	b := img.Bounds()
	if b.Dx() != 1200 || b.Dy() != 70+rows*36+12 {
		t.Errorf("picture %dx%d, want 1200x%d", b.Dx(), b.Dy(), 70+rows*36+12)
	}
	// The first palette colour (every panel's first line) must be drawn.
	seen := map[[3]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	first := palette[0]
	if !seen[[3]uint32{uint32(first.R), uint32(first.G), uint32(first.B)}] {
		t.Error("no line in the first palette colour")
	}
	if len(seen) < 50 {
		t.Errorf("%d colours: the picture looks empty", len(seen))
	}
}

func TestRunErrors(t *testing.T) {
	refusing := httptest.NewServer(&fakePrometheus{t: t, refuse: true})
	defer refusing.Close()
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
	}))
	defer empty.Close()
	notProm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
	}))
	defer notProm.Close()

	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"refused query", []string{"--prometheus", refusing.URL}, "bad_data"},
		{"strict without data", []string{"--prometheus", empty.URL, "--strict"}, "no data"},
		{"not prometheus", []string{"--prometheus", notProm.URL}, "not a Prometheus API answer"},
		{"bad url", []string{"--prometheus", "localhost:9090"}, "want a URL"},
		{"bad end", []string{"--prometheus", empty.URL, "--end", "yesterday"}, "--end"},
		{"bad range", []string{"--prometheus", empty.URL, "--range", "-1m"}, "--range"},
		{"missing dashboard", []string{"--prometheus", empty.URL, "--dashboard", "nope.json"}, "nope.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.png")
			args := append([]string{"--dashboard", dashboardFile, "--out", out}, tt.args...)
			err := run(context.Background(), args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run(%v) = %v, want an error with %q", tt.args, err, tt.wantErr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a picture was written despite the error")
			}
		})
	}
}

func TestSegments(t *testing.T) {
	s := series{t: []float64{0, 5, 10, 15, 40, 45}, v: []float64{1, math.NaN(), 2, 3, 4, math.Inf(1)}}
	got := segments(s)
	var lens []int
	for _, seg := range got {
		lens = append(lens, len(seg))
	}
	// [0] (widened to a dash), [10 15], [40] (after a gap, widened).
	if want := []int{2, 2, 2}; !slices.Equal(lens, want) {
		t.Errorf("segment lengths %v, want %v (%v)", lens, want, fmt.Sprint(got))
	}
}
