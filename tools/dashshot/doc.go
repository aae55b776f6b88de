// Command dashshot draws the panels of a Grafana dashboard from a Prometheus
// server into one PNG, without Grafana. It made docs/dashboard.png: the
// dashboard of the monitoring profile (deploy/grafana/dashboards/pelm.json),
// rendered from a Prometheus that scraped `pelm serve` under `pelm bench`
// (docs/operations.md, Dashboard, says how to do it again).
//
// It reads the dashboard JSON, sends every query of every panel to
// Prometheus' /api/v1/query_range over --range ending at --end, and draws one
// time-series plot per panel, placed by the panel's gridPos on Grafana's
// 24-column grid, with the panel's title, unit, legend format and threshold
// lines. Every panel is drawn as a time series, whatever its type. It knows
// the variables Grafana sets for a Prometheus query:
//
//   - $__interval: the step;
//   - $__rate_interval: as Grafana computes it, max(step + scrape interval,
//     4 × scrape interval), or --rate-interval;
//   - $__range: --range.
//
// Dashboard template variables ($job, ...) are not expanded: a query that
// uses them fails.
//
// Usage:
//
//	go run ./tools/dashshot \
//	  --prometheus http://127.0.0.1:9090 \
//	  --dashboard deploy/grafana/dashboards/pelm.json \
//	  --out docs/dashboard.png --range 15m
//
// A query that Prometheus refuses is an error: nothing is written. A query
// that returns no series is reported on stderr and drawn as "no data";
// --strict makes a panel without any series an error.
package main
