package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// dashboard is the part of a Grafana dashboard JSON that dashshot draws.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

type panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Datasource  *datasource `json:"datasource"`
	GridPos     gridPos     `json:"gridPos"`
	FieldConfig struct {
		Defaults fieldDefaults `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []target `json:"targets"`
	// Panels are a row's panels while the row is collapsed.
	Panels []panel `json:"panels"`
}

type gridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

type fieldDefaults struct {
	Unit   string   `json:"unit"`
	Min    *float64 `json:"min"`
	Max    *float64 `json:"max"`
	Custom struct {
		ThresholdsStyle struct {
			Mode string `json:"mode"`
		} `json:"thresholdsStyle"`
	} `json:"custom"`
	Thresholds struct {
		Steps []struct {
			Color string   `json:"color"`
			Value *float64 `json:"value"`
		} `json:"steps"`
	} `json:"thresholds"`
}

type target struct {
	RefID        string      `json:"refId"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat"`
	Hide         bool        `json:"hide"`
	Datasource   *datasource `json:"datasource"`
}

// datasource is a panel's or a query's data source: an object with a uid
// since Grafana 8, a bare name before.
type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func (d *datasource) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		*d = datasource{UID: name}
		return nil
	}
	type plain datasource
	return json.Unmarshal(b, (*plain)(d))
}

// gridColumns is the width of Grafana's dashboard grid.
const gridColumns = 24

// parseDashboard reads a dashboard JSON (as exported or provisioned; the
// "dashboard" wrapper of Grafana's HTTP API is accepted too).
func parseDashboard(r io.Reader) (*dashboard, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	var wrapped struct {
		Dashboard *dashboard `json:"dashboard"`
	}
	d := new(dashboard)
	if err := json.Unmarshal(b, &wrapped); err == nil && wrapped.Dashboard != nil {
		d = wrapped.Dashboard
	} else if err := json.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	if len(d.graphs()) == 0 {
		return nil, errors.New("dashboard: no panels")
	}
	return d, nil
}

// graphs returns the panels that show data, rows flattened, in reading order
// (top to bottom, left to right).
func (d *dashboard) graphs() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	slices.SortStableFunc(out, func(a, b panel) int {
		if a.GridPos.Y != b.GridPos.Y {
			return a.GridPos.Y - b.GridPos.Y
		}
		return a.GridPos.X - b.GridPos.X
	})
	return out
}

// queries returns the panel's visible queries.
func (p *panel) queries() []target {
	var out []target
	for _, t := range p.Targets {
		if !t.Hide && strings.TrimSpace(t.Expr) != "" {
			out = append(out, t)
		}
	}
	return out
}

// thresholdLines returns the values of the panel's threshold steps when it draws
// them as lines (Grafana's thresholdsStyle "line", "dashed", ... not "off").
func (p *panel) thresholdLines() []float64 {
	mode := p.FieldConfig.Defaults.Custom.ThresholdsStyle.Mode
	if mode == "" || mode == "off" || mode == "area" {
		return nil
	}
	var out []float64
	for _, s := range p.FieldConfig.Defaults.Thresholds.Steps {
		if s.Value != nil {
			out = append(out, *s.Value)
		}
	}
	return out
}

// queryVars are the values of Grafana's built-in query variables.
type queryVars struct {
	step         time.Duration // $__interval
	rateInterval time.Duration // $__rate_interval
	rng          time.Duration // $__range
}

// grafanaRateInterval is Grafana's $__rate_interval: max($__interval +
// scrape interval, 4 × scrape interval).
func grafanaRateInterval(step, scrape time.Duration) time.Duration {
	return max(step+scrape, 4*scrape)
}

var varRE = regexp.MustCompile(`\$\{(__[a-z_]+)\}|\$(__[a-z_]+)`)

// expand replaces Grafana's built-in variables in a PromQL expression.
func expand(expr string, v queryVars) (string, error) {
	var bad string
	out := varRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRE.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		switch name {
		case "__interval":
			return promDuration(v.step)
		case "__rate_interval":
			return promDuration(v.rateInterval)
		case "__range":
			return promDuration(v.rng)
		}
		if bad == "" {
			bad = m
		}
		return m
	})
	if bad != "" {
		return "", fmt.Errorf("unknown variable %s", bad)
	}
	if i := strings.IndexByte(out, '$'); i >= 0 {
		return "", fmt.Errorf("template variable at %q: dashshot expands only $__interval, $__rate_interval and $__range", out[i:])
	}
	return out, nil
}

// promDuration writes d as a PromQL duration in whole seconds (at least 1s).
func promDuration(d time.Duration) string {
	return fmt.Sprintf("%ds", max(int64((d+time.Second-1)/time.Second), 1))
}

var legendRE = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// legend names a series as Grafana does: the legend format with {{label}}
// replaced, or, with no format, the series' labels.
func legend(format string, labels map[string]string) string {
	if format != "" && format != "__auto" {
		return legendRE.ReplaceAllStringFunc(format, func(m string) string {
			return labels[legendRE.FindStringSubmatch(m)[1]]
		})
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	return labels["__name__"] + "{" + strings.Join(parts, ", ") + "}"
}
