package bench

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// WritePlot draws latency percentiles (p50, p95, p99; log scale) against
// throughput for pelm and the echo floor, one point per open-loop step in
// order of offered rate (aborted steps left out: they stopped early, so
// their figures describe a fraction of the load), with the ancestor's P50
// and P99 targets, and writes it as PNG.
func (r *Report) WritePlot(w io.Writer) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("pelm vs JetStream echo: mix %s, %s × %d", r.Config.Mix, rateStr(float64(r.Config.Preload)), r.Config.Dim)
	p.X.Label.Text = "throughput (results/s)"
	p.Y.Label.Text = "latency from intended send (ms)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	type pct struct {
		name string
		pick func(Latency) int64
	}
	pcts := []pct{
		{"p50", func(l Latency) int64 { return l.P50 }},
		{"p95", func(l Latency) int64 { return l.P95 }},
		{"p99", func(l Latency) int64 { return l.P99 }},
	}
	palette := map[string][]color.Color{
		"pelm": {color.RGBA{R: 0x6b, G: 0xae, B: 0xd6, A: 0xff}, color.RGBA{R: 0x21, G: 0x71, B: 0xb5, A: 0xff}, color.RGBA{R: 0x08, G: 0x30, B: 0x6b, A: 0xff}},
		"echo": {color.RGBA{R: 0xbd, G: 0xbd, B: 0xbd, A: 0xff}, color.RGBA{R: 0x96, G: 0x96, B: 0x96, A: 0xff}, color.RGBA{R: 0x52, G: 0x52, B: 0x52, A: 0xff}},
	}
	minX, maxX, maxY := math.Inf(1), 0.0, 0.0
	for _, sys := range []string{"pelm", "echo"} {
		steps := r.steps(sys, KindRate, KindProbe, KindHalfMax)
		steps = slices.DeleteFunc(steps, func(s Step) bool { return s.Results == 0 || s.Aborted })
		if len(steps) == 0 {
			continue
		}
		slices.SortStableFunc(steps, func(a, b Step) int { return cmp.Compare(a.OfferedPerS, b.OfferedPerS) })
		for i, q := range pcts {
			xys := make(plotter.XYs, len(steps))
			for j, s := range steps {
				xys[j].X = s.ThroughputPerS
				xys[j].Y = math.Max(float64(q.pick(s.LatencyUS))/1000, 0.001)
				minX, maxX = math.Min(minX, s.ThroughputPerS), math.Max(maxX, s.ThroughputPerS)
				maxY = math.Max(maxY, xys[j].Y)
			}
			line, points, err := plotter.NewLinePoints(xys)
			if err != nil {
				return fmt.Errorf("bench: plot: %w", err)
			}
			c := palette[sys][i]
			line.Color, points.Color = c, c
			line.Width = vg.Points(1.5)
			points.Shape = draw.CircleGlyph{}
			points.Radius = vg.Points(2.5)
			if sys == "echo" {
				line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				points.Shape = draw.BoxGlyph{}
			}
			p.Add(line, points)
			p.Legend.Add(sys+" "+q.name, line, points)
		}
	}
	if maxX == 0 {
		minX, maxX = 0, 1
	}
	for _, t := range []struct {
		name string
		ms   float64
	}{{"ancestor P50 target", float64(AncestorP50.Milliseconds())}, {"ancestor P99 target", float64(AncestorP99.Milliseconds())}} {
		l, err := plotter.NewLine(plotter.XYs{{X: minX, Y: t.ms}, {X: maxX, Y: t.ms}})
		if err != nil {
			return fmt.Errorf("bench: plot: %w", err)
		}
		l.Color = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
		l.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(t.name, l)
	}
	// Room above the data for the legend: the y axis is logarithmic, so
	// a factor of 30 is about a third of the height.
	p.Y.Max = 30 * math.Max(maxY, float64(AncestorP99.Milliseconds()))
	p.X.Min = 0
	p.X.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ticks := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = rateStr(ticks[i].Value)
			}
		}
		return ticks
	})
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("bench: plot: %w", err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("bench: write plot: %w", err)
	}
	return nil
}
