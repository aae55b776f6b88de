package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// series is one series of a range query: its labels and its samples (t in
// Unix seconds). A NaN or infinite value is kept; the plot leaves a gap.
type series struct {
	labels map[string]string
	t, v   []float64
}

// promClient queries Prometheus' HTTP API.
type promClient struct {
	base *url.URL
	http *http.Client
}

func newPromClient(raw string, timeout time.Duration) (*promClient, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("--prometheus %q: want a URL such as http://127.0.0.1:9090", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &promClient{base: u, http: &http.Client{Timeout: timeout}}, nil
}

// queryRange runs /api/v1/query_range and returns the matrix.
func (c *promClient) queryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]series, error) {
	q := url.Values{}
	q.Set("query", expr)
	q.Set("start", strconv.FormatInt(start.Unix(), 10))
	q.Set("end", strconv.FormatInt(end.Unix(), 10))
	q.Set("step", strconv.FormatFloat(step.Seconds(), 'f', -1, 64))
	u := *c.base
	u.Path += "/api/v1/query_range"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(q.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("HTTP %s, not a Prometheus API answer: %.200s", resp.Status, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s: %s", r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("prometheus: result type %q, want matrix", r.Data.ResultType)
	}
	out := make([]series, 0, len(r.Data.Result))
	for _, res := range r.Data.Result {
		s := series{labels: res.Metric, t: make([]float64, 0, len(res.Values)), v: make([]float64, 0, len(res.Values))}
		for _, pair := range res.Values {
			ts, ok := pair[0].(float64)
			str, ok2 := pair[1].(string)
			if !ok || !ok2 {
				return nil, fmt.Errorf("prometheus: malformed sample %v", pair)
			}
			v, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return nil, fmt.Errorf("prometheus: sample value %q: %w", str, err)
			}
			s.t = append(s.t, ts)
			s.v = append(s.v, v)
		}
		out = append(out, s)
	}
	return out, nil
}
