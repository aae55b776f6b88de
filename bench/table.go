package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the report for a person: the figures of every rate,
// pelm's beside the echo's and the ancestor's targets, the highest
// sustainable rates, and every target with what the run measured.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	c := r.Config
	into := strconv.Quote(c.Memory)
	if c.Memories > 1 {
		into = fmt.Sprintf("%d memories %s-0 to %s-%d", c.Memories, c.Memory, c.Memory, c.Memories-1)
	}
	fmt.Fprintf(&b, "pelm bench: %s items × %d preloaded into %s; mix %s; phases %s; %gs per rate\n",
		rateStr(float64(c.Preload)), c.Dim, into, c.Mix, c.Phases, c.DurationS)
	fmt.Fprintf(&b, "machine: %s/%s, %d CPUs, %s; request bytes %v, result bytes %v\n",
		r.Machine.OS, r.Machine.Arch, r.Machine.CPUs, r.Machine.GoVersion, sizes(r.RequestBytes), sizes(r.ResultBytes))
	for _, s := range r.steps("pelm", KindPreload) {
		fmt.Fprintf(&b, "preload: %s stores in %.2fs (%s/s, closed loop), %d errors, %d missing\n",
			rateStr(float64(s.Results)), s.DurationS, rateStr(s.ThroughputPerS), s.Errors, s.Missing)
	}
	b.WriteByte('\n')

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "offered/s\tsystem\tresults/s\tp50\tp95\tp99\tmax\terrors\tsustained\t\n"
	section := func(title string, kinds ...string) {
		var rows []Step
		for _, s := range r.Steps {
			for _, k := range kinds {
				if s.Kind == k {
					rows = append(rows, s)
				}
			}
		}
		if len(rows) == 0 {
			return
		}
		fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t\t\n", title)
		fmt.Fprint(tw, head)
		for _, s := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", rateStr(s.OfferedPerS), s.System,
				rateStr(s.ThroughputPerS), ms(s.LatencyUS.P50), ms(s.LatencyUS.P95), ms(s.LatencyUS.P99),
				ms(s.LatencyUS.Max), pct(s.ErrorRate), sustained(s))
			if s.System != "pelm" || s.Kind == KindProbe {
				continue
			}
			for _, q := range r.Compare {
				if q.Kind == s.Kind && q.OfferedPerS == s.OfferedPerS {
					fmt.Fprintf(tw, "\tpelm/echo\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t%.2f×\t\t\t\n", q.Throughput, q.P50, q.P95, q.P99, q.Max)
				}
			}
		}
		fmt.Fprintf(tw, "ancestor target\t\t≥ %s\t≤ %s\t≤ %s\t≤ %s\t\t< 1 %%\t\t\n", rateStr(AncestorThroughput),
			ms(AncestorP50.Microseconds()), ms(AncestorP95.Microseconds()), ms(AncestorP99.Microseconds()))
		fmt.Fprint(tw, "\t\t\t\t\t\t\t\t\t\n")
	}
	section("offered rates", KindRate)
	section("search of the highest sustainable rate", KindProbe)
	section("half of pelm's highest sustainable rate", KindHalfMax)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "latency: from each request's intended send time to its result; sustained: errors < 1 %% and p99 ≤ %s\n",
		ms(c.MaxP99US))
	if m := r.Max; m != nil {
		fmt.Fprintf(&b, "highest sustainable rate: pelm %s/s", rateStr(m.PelmPerS))
		if c.Echo {
			fmt.Fprintf(&b, ", echo %s/s, pelm/echo %.0f %%", rateStr(m.EchoPerS), 100*m.Ratio)
		}
		b.WriteByte('\n')
	}
	b.WriteString("\ntargets\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", strings.ToUpper(t.Status), t.Name, t.Want, t.Got)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if r.Stray > 0 {
		fmt.Fprintf(&b, "note: %d results matched no request of the step in progress (late ones of an earlier step)\n", r.Stray)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sustained(s Step) string {
	if s.Aborted {
		return "NO, aborted"
	}
	return yesNo(s.Sustainable)
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "NO"
}

func sizes(m map[string]int) string {
	var parts []string
	for _, n := range opNames {
		if v, ok := m[n]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", n, v))
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
