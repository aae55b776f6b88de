package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dashshot:", err)
		}
		os.Exit(2)
	}
}

// config is what the flags set.
type config struct {
	prometheus   string
	dashboard    string
	out          string
	rng          time.Duration
	end          time.Time
	step         time.Duration
	scrape       time.Duration
	rateInterval time.Duration
	width        int
	title        string
	strict       bool
	timeout      time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("dashshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "dashshot draws a Grafana dashboard's panels from Prometheus into a PNG.")
		fmt.Fprintln(stderr, "Usage: go run ./tools/dashshot [flags]")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.prometheus, "prometheus", "http://127.0.0.1:9090", "base URL of the Prometheus server to query")
	fs.StringVar(&c.dashboard, "dashboard", "deploy/grafana/dashboards/pelm.json", "Grafana dashboard JSON whose panels are drawn")
	fs.StringVar(&c.out, "out", "dashboard.png", "PNG file to write")
	fs.DurationVar(&c.rng, "range", 15*time.Minute, "time range drawn, ending at --end")
	end := fs.String("end", "", "end of the range: RFC 3339 (2026-01-02T15:04:05Z) or Unix seconds; empty: now")
	fs.DurationVar(&c.step, "step", 0, "query resolution; 0: --range / 300, at least --scrape-interval")
	fs.DurationVar(&c.scrape, "scrape-interval", 5*time.Second, "Prometheus' scrape interval (the datasource's timeInterval), for $__rate_interval")
	fs.DurationVar(&c.rateInterval, "rate-interval", 0, "value of $__rate_interval; 0: as Grafana, max(step + scrape interval, 4 × scrape interval)")
	fs.IntVar(&c.width, "width", 1800, "picture width in pixels (the height follows the dashboard's grid)")
	fs.StringVar(&c.title, "title", "", "title above the panels; empty: the dashboard's title")
	fs.BoolVar(&c.strict, "strict", false, "fail when a panel has no data at all")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "timeout of each query")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.end = time.Now()
	if *end != "" {
		if t, err := time.Parse(time.RFC3339, *end); err == nil {
			c.end = t
		} else if s, err := strconv.ParseInt(*end, 10, 64); err == nil {
			c.end = time.Unix(s, 0)
		} else {
			return c, fmt.Errorf("--end %q: want RFC 3339 or Unix seconds", *end)
		}
	}
	switch {
	case c.rng <= 0:
		return c, errors.New("--range must be positive")
	case c.scrape <= 0:
		return c, errors.New("--scrape-interval must be positive")
	case c.step < 0 || c.rateInterval < 0:
		return c, errors.New("--step and --rate-interval cannot be negative")
	case c.width < 400 || c.width > 10000:
		return c, errors.New("--width must be 400 to 10000 pixels")
	case c.out == "":
		return c, errors.New("--out is required")
	}
	if c.step == 0 {
		c.step = max((c.rng / 300).Truncate(time.Second), c.scrape)
	}
	if c.rateInterval == 0 {
		c.rateInterval = grafanaRateInterval(c.step, c.scrape)
	}
	return c, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	f, err := os.Open(c.dashboard)
	if err != nil {
		return err
	}
	d, err := parseDashboard(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", c.dashboard, err)
	}
	client, err := newPromClient(c.prometheus, c.timeout)
	if err != nil {
		return err
	}
	end := c.end.Truncate(time.Second)
	start := end.Add(-c.rng)
	vars := queryVars{step: c.step, rateInterval: c.rateInterval, rng: c.rng}

	var panels []panelData
	for _, p := range d.graphs() {
		pd := panelData{panel: p}
		qs := p.queries()
		if len(qs) == 0 {
			fmt.Fprintf(stderr, "dashshot: panel %q has no queries\n", p.Title)
		}
		for _, q := range qs {
			expr, err := expand(q.Expr, vars)
			if err != nil {
				return fmt.Errorf("panel %q, query %s: %w", p.Title, q.RefID, err)
			}
			ss, err := client.queryRange(ctx, expr, start, end, c.step)
			if err != nil {
				return fmt.Errorf("panel %q, query %s (%s): %w", p.Title, q.RefID, expr, err)
			}
			if len(ss) == 0 {
				fmt.Fprintf(stderr, "dashshot: panel %q, query %s: no data: %s\n", p.Title, q.RefID, expr)
			}
			for _, s := range ss {
				pd.lines = append(pd.lines, namedSeries{name: legend(q.LegendFormat, s.labels), series: s})
			}
		}
		if len(pd.lines) == 0 && c.strict {
			return fmt.Errorf("panel %q: no data (--strict)", p.Title)
		}
		panels = append(panels, pd)
	}

	title := c.title
	if title == "" {
		title = d.Title
	}
	subtitle := fmt.Sprintf("%s to %s UTC (%s), step %s, $__rate_interval %s. Drawn by tools/dashshot from %s, panels of %s.",
		start.UTC().Format("2006-01-02 15:04"), end.UTC().Format("15:04"), c.rng, c.step, promDuration(c.rateInterval), c.prometheus, c.dashboard)
	var buf bytes.Buffer
	lay := layout{width: c.width, rowPx: 36, headPx: 70, marginX: 12}
	if err := render(&buf, panels, title, subtitle, start, end, lay); err != nil {
		return err
	}
	return os.WriteFile(c.out, buf.Bytes(), 0o644)
}
