package main

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// panelData is a panel with the series its queries returned.
type panelData struct {
	panel panel
	lines []namedSeries
}

type namedSeries struct {
	name string
	series
}

// layout is the picture's geometry, in pixels.
type layout struct {
	width   int // of the picture
	rowPx   int // one grid row (Grafana: 30 px and a margin)
	headPx  int // the title strip
	marginX int
}

const dpi = 96

// px converts pixels to vg lengths at dpi.
func px(n float64) vg.Length { return vg.Length(n * 72 / dpi) }

// Colours: Grafana's dark theme and its classic palette.
var (
	bgColor     = color.RGBA{R: 0x11, G: 0x12, B: 0x17, A: 0xff}
	panelColor  = color.RGBA{R: 0x18, G: 0x1b, B: 0x1f, A: 0xff}
	borderColor = color.RGBA{R: 0x2c, G: 0x32, B: 0x35, A: 0xff}
	textColor   = color.RGBA{R: 0xcc, G: 0xcc, B: 0xdc, A: 0xff}
	dimColor    = color.RGBA{R: 0x8e, G: 0x8e, B: 0x9e, A: 0xff}
	gridColor   = color.RGBA{R: 0x2a, G: 0x2d, B: 0x33, A: 0xff}
	threshColor = color.RGBA{R: 0xf2, G: 0x49, B: 0x5c, A: 0xff}
	palette     = []color.RGBA{
		{R: 0x73, G: 0xbf, B: 0x69, A: 0xff}, // green
		{R: 0xf2, G: 0xcc, B: 0x0c, A: 0xff}, // yellow
		{R: 0x8a, G: 0xb8, B: 0xff, A: 0xff}, // blue
		{R: 0xff, G: 0x98, B: 0x30, A: 0xff}, // orange
		{R: 0xf2, G: 0x49, B: 0x5c, A: 0xff}, // red
		{R: 0x57, G: 0x94, B: 0xf2, A: 0xff}, // dark blue
		{R: 0xb8, G: 0x77, B: 0xd9, A: 0xff}, // purple
		{R: 0x70, G: 0x5d, B: 0xa0, A: 0xff}, // violet
	}
)

func textStyle(size float64, c color.Color) draw.TextStyle {
	return draw.TextStyle{
		Color:   c,
		Font:    font.From(plot.DefaultFont, px(size)),
		Handler: plot.DefaultTextHandler,
	}
}

// render draws the panels on Grafana's grid and writes a PNG.
func render(w io.Writer, panels []panelData, title, subtitle string, start, end time.Time, lay layout) error {
	rows := 0
	for _, pd := range panels {
		rows = max(rows, pd.panel.GridPos.Y+pd.panel.GridPos.H)
	}
	height := lay.headPx + rows*lay.rowPx + lay.marginX
	img := vgimg.NewWith(vgimg.UseWH(px(float64(lay.width)), px(float64(height))), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(bgColor))
	dc := draw.New(img)

	// The title strip.
	top := px(float64(height))
	dc.FillText(textStyle(20, textColor), vg.Point{X: px(float64(lay.marginX)), Y: top - px(30)}, title)
	dc.FillText(textStyle(13, dimColor), vg.Point{X: px(float64(lay.marginX)), Y: top - px(52)}, subtitle)

	colPx := float64(lay.width-2*lay.marginX) / gridColumns
	const gap = 4.0 // px between panels
	for i, pd := range panels {
		g := pd.panel.GridPos
		x0 := float64(lay.marginX) + float64(g.X)*colPx + gap
		x1 := float64(lay.marginX) + float64(g.X+g.W)*colPx - gap
		y1 := float64(height-lay.headPx-g.Y*lay.rowPx) - gap
		y0 := float64(height-lay.headPx-(g.Y+g.H)*lay.rowPx) + gap
		c := draw.Canvas{Canvas: img, Rectangle: vg.Rectangle{Min: vg.Point{X: px(x0), Y: px(y0)}, Max: vg.Point{X: px(x1), Y: px(y1)}}}
		if err := drawPanel(c, pd, start, end); err != nil {
			return fmt.Errorf("panel %d %q: %w", i+1, pd.panel.Title, err)
		}
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("write png: %w", err)
	}
	return nil
}

// drawPanel draws one panel: its frame, the plot, and a legend beneath.
func drawPanel(c draw.Canvas, pd panelData, start, end time.Time) error {
	c.SetColor(panelColor)
	c.Fill(c.Rectangle.Path())
	c.StrokeLines(draw.LineStyle{Color: borderColor, Width: px(1)}, []vg.Point{
		c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}, c.Min,
	})
	inner := c.Rectangle
	inner.Min.X += px(6)
	inner.Max.X -= px(10)
	inner.Max.Y -= px(6)
	inner.Min.Y += px(4)

	// Legend: one row of entries (wrapped) at the bottom, as Grafana's
	// "list" legend.
	legendStyle := textStyle(11, textColor)
	lineH := px(16)
	type entry struct {
		name string
		c    color.Color
		dash bool
	}
	var entries []entry
	for i, l := range pd.lines {
		entries = append(entries, entry{name: l.name, c: palette[i%len(palette)]})
	}
	thresholds := visibleThresholds(pd)
	for _, t := range thresholds {
		entries = append(entries, entry{name: "threshold " + formatValue(pd.panel.FieldConfig.Defaults.Unit, t), c: threshColor, dash: true})
	}
	// Lay the entries out first, to know how many rows they take.
	type placed struct {
		entry
		x   vg.Length
		row int
	}
	var legend []placed
	x, row := vg.Length(0), 0
	for _, e := range entries {
		w := px(22) + legendStyle.Width(e.name) + px(14)
		if x > 0 && x+w > inner.Max.X-inner.Min.X {
			x, row = 0, row+1
		}
		legend = append(legend, placed{entry: e, x: x, row: row})
		x += w
	}
	legendRows := 0
	if len(legend) > 0 {
		legendRows = row + 1
	}
	legendTop := inner.Min.Y + vg.Length(legendRows)*lineH
	for _, e := range legend {
		y := legendTop - vg.Length(e.row)*lineH - lineH/2
		ls := draw.LineStyle{Color: e.c, Width: px(3)}
		if e.dash {
			ls.Width = px(1.5)
			ls.Dashes = []vg.Length{px(4), px(3)}
		}
		c.StrokeLine2(ls, inner.Min.X+e.x, y, inner.Min.X+e.x+px(16), y)
		sty := legendStyle
		sty.YAlign = draw.YCenter
		c.FillText(sty, vg.Point{X: inner.Min.X + e.x + px(22), Y: y}, e.name)
	}
	plotArea := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: inner.Min.X, Y: legendTop + px(2)}, Max: inner.Max}}

	p, err := panelPlot(pd, thresholds, start, end)
	if err != nil {
		return err
	}
	p.Draw(plotArea)
	if len(pd.lines) == 0 {
		sty := textStyle(14, dimColor)
		sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
		c.FillText(sty, plotArea.Center(), "No data")
	}
	return nil
}

// visibleThresholds returns the panel's threshold lines that lie within its
// data: like Grafana, a threshold does not stretch the axis.
func visibleThresholds(pd panelData) []float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, l := range pd.lines {
		for _, v := range l.v {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if d := pd.panel.FieldConfig.Defaults; d.Min != nil {
		lo = min(lo, *d.Min)
	}
	var out []float64
	for _, t := range pd.panel.thresholdLines() {
		if t >= lo && t <= hi {
			out = append(out, t)
		}
	}
	return out
}

func panelPlot(pd panelData, thresholds []float64, start, end time.Time) (*plot.Plot, error) {
	p := plot.New()
	p.BackgroundColor = color.Transparent
	p.Title.Text = pd.panel.Title
	p.Title.TextStyle = textStyle(14, textColor)
	p.Title.Padding = px(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Color = borderColor
		a.LineStyle.Color = borderColor
		a.Tick.Color = borderColor
		a.Tick.LineStyle.Color = borderColor
		// Colour and size only: the axis keeps its own alignment.
		a.Tick.Label.Color = dimColor
		a.Tick.Label.Font = font.From(plot.DefaultFont, px(11))
		a.Padding = 0
	}
	grid := plotter.NewGrid()
	grid.Vertical.Color, grid.Horizontal.Color = gridColor, gridColor
	grid.Vertical.Width, grid.Horizontal.Width = px(1), px(1)
	p.Add(grid)

	unit := pd.panel.FieldConfig.Defaults.Unit
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, l := range pd.lines {
		col := palette[i%len(palette)]
		for _, seg := range segments(l.series) {
			line, err := plotter.NewLine(seg)
			if err != nil {
				return nil, err
			}
			line.Color = col
			line.Width = px(1.5)
			p.Add(line)
			for _, xy := range seg {
				lo, hi = min(lo, xy.Y), max(hi, xy.Y)
			}
		}
	}
	t0, t1 := float64(start.Unix()), float64(end.Unix())
	for _, t := range thresholds {
		line, err := plotter.NewLine(plotter.XYs{{X: t0, Y: t}, {X: t1, Y: t}})
		if err != nil {
			return nil, err
		}
		line.Color = threshColor
		line.Width = px(1.5)
		line.Dashes = []vg.Length{px(4), px(3)}
		p.Add(line)
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	d := pd.panel.FieldConfig.Defaults
	if d.Min != nil {
		lo = *d.Min
	}
	if d.Max != nil {
		hi = *d.Max
	}
	if hi <= lo {
		hi = lo + max(math.Abs(lo), 1)
	}
	// A little headroom above the highest point, as Grafana leaves.
	hi += (hi - lo) * 0.05
	p.Y.Min, p.Y.Max = lo, hi
	p.X.Min, p.X.Max = t0, t1
	p.X.Tick.Marker = timeTicks{}
	p.Y.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		// Bytes tick at round binary multiples (256 MiB, not 268.4 MB).
		scale := 1.0
		if unit == "bytes" {
			for scale*1024 <= math.Max(math.Abs(lo), math.Abs(hi)) && scale < 1<<40 {
				scale *= 1024
			}
		}
		var ticks []plot.Tick
		for _, v := range niceTicks(lo/scale, hi/scale, 4) {
			ticks = append(ticks, plot.Tick{Value: v * scale, Label: formatValue(unit, v*scale)})
		}
		return ticks
	})
	return p, nil
}

// niceTicks returns about n+1 round values (1, 2, 2.5 or 5 times a power of
// ten apart) from lo to hi.
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || n < 1 {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for i := math.Ceil(lo / step); i*step <= hi+step*1e-9; i++ {
		v := i * step
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		out = append(out, v)
	}
	return out
}

// segments splits a series at NaN and infinite values and at gaps of more
// than three steps, as Grafana leaves gaps (spanNulls off).
func segments(s series) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	step := math.Inf(1)
	for i := 1; i < len(s.t); i++ {
		step = min(step, s.t[i]-s.t[i-1])
	}
	for i := range s.t {
		v := s.v[i]
		if math.IsNaN(v) || math.IsInf(v, 0) || (len(cur) > 0 && s.t[i]-cur[len(cur)-1].X > 3*step) {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
		}
		cur = append(cur, plotter.XY{X: s.t[i], Y: v})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	// A lone point draws nothing as a line: widen it to a short dash.
	for i, seg := range out {
		if len(seg) == 1 {
			out[i] = plotter.XYs{seg[0], {X: seg[0].X + 1, Y: seg[0].Y}}
		}
	}
	return out
}

// timeTicks marks round times: about six labelled ticks, in UTC.
type timeTicks struct{}

func (timeTicks) Ticks(lo, hi float64) []plot.Tick {
	steps := []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if (hi-lo)/s <= 7 {
			step = s
			break
		}
	}
	format := "15:04"
	if step < 60 {
		format = "15:04:05"
	}
	var ticks []plot.Tick
	for t := math.Ceil(lo/step) * step; t <= hi; t += step {
		ticks = append(ticks, plot.Tick{Value: t, Label: time.Unix(int64(t), 0).UTC().Format(format)})
	}
	return ticks
}

// formatValue writes v in a Grafana unit: s, ms, bytes, percentunit,
// percent, reqps, ops, short (or none).
func formatValue(unit string, v float64) string {
	switch unit {
	case "s":
		a := math.Abs(v)
		switch {
		case v == 0:
			return "0"
		case a < 1e-3:
			return trim(v*1e6) + " µs"
		case a < 1:
			return trim(v*1e3) + " ms"
		case a < 60:
			return trim(v) + " s"
		}
		return trim(v/60) + " min"
	case "ms":
		return formatValue("s", v/1e3)
	case "bytes":
		a := math.Abs(v)
		for _, u := range []struct {
			div  float64
			name string
		}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
			if a >= u.div {
				return trim(v/u.div) + " " + u.name
			}
		}
		return trim(v) + " B"
	case "percentunit":
		return trim(v*100) + "%"
	case "percent":
		return trim(v) + "%"
	case "reqps":
		return short(v) + " req/s"
	case "ops":
		return short(v) + " ops/s"
	}
	return short(v)
}

// short writes v with an SI suffix: 1.5 K, 2 Mil, as Grafana's "short".
func short(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trim(v/1e9) + " Bil"
	case a >= 1e6:
		return trim(v/1e6) + " Mil"
	case a >= 1e3:
		return trim(v/1e3) + " K"
	}
	return trim(v)
}

// trim writes v with at most three decimals and no trailing zeros.
func trim(v float64) string {
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "-0" {
		s = "0"
	}
	return s
}
