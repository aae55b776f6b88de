package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress draws a bar for the step in progress on a terminal, redrawn in
// place every 200 ms, and writes one line per finished step anywhere.
type progress struct {
	w    io.Writer
	tty  bool
	r    *runner
	mu   sync.Mutex // serialises writes
	done chan struct{}
	wg   sync.WaitGroup
}

func newProgress(w io.Writer, r *runner) *progress {
	p := &progress{w: w, r: r}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) start() {
	if p.w == nil || !p.tty {
		return
	}
	p.done = make(chan struct{})
	p.wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				if st := p.r.cur.Load(); st != nil {
					p.draw(st)
				}
			}
		}
	})
}

func (p *progress) stop() {
	if p.done != nil {
		close(p.done)
		p.wg.Wait()
		p.done = nil
	}
}

func (p *progress) begin(st *step) {
	if p.w != nil && p.tty {
		p.draw(st)
	}
}

// label names a step: "pelm  rate 5,000/s".
func label(st *step) string {
	if st.rate == 0 {
		return fmt.Sprintf("%s %s", systemNames[st.sys], st.kind)
	}
	return fmt.Sprintf("%s %s %s/s", systemNames[st.sys], st.kind, rateStr(st.rate))
}

const barWidth = 30

func (p *progress) draw(st *step) {
	sent, recv := st.sent.Load(), st.recv.Load()
	frac := float64(recv) / float64(st.n)
	if st.rate > 0 {
		frac = float64(sent) / float64(st.n)
	}
	frac = min(max(frac, 0), 1)
	full := int(frac * barWidth)
	bar := strings.Repeat("█", full) + strings.Repeat("░", barWidth-full)
	line := fmt.Sprintf("%-28s %s %3.0f%%  sent %d  results %d", label(st), bar, 100*frac, sent, recv)
	if e := st.pubErrs.Load(); e > 0 {
		line += fmt.Sprintf("  publish errors %d", e)
	}
	p.mu.Lock()
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.mu.Unlock()
}

// end replaces the bar with the step's summary line.
func (p *progress) end(st *step, s Step) {
	if p.w == nil {
		return
	}
	line := fmt.Sprintf("%-28s results %d/%d  %s/s  p50 %s  p99 %s  errors %s", label(st), s.Results, st.n,
		rateStr(s.ThroughputPerS), ms(s.LatencyUS.P50), ms(s.LatencyUS.P99), pct(s.ErrorRate))
	if st.rate > 0 && st.kind != KindWarmup {
		line += "  sustained " + sustained(s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintln(p.w, line)
}
