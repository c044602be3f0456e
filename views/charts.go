package views

import (
	"fmt"
	"strconv"
	"strings"
)

// Segment is one coloured part of a stacked bar.
type Segment struct {
	Key   string // a CSS class suffix: active, refresh_failing, needs_reconnect, succeeded, failed
	Label string
	Count int64
}

// Bar is one stacked bar of a chart.
type Bar struct {
	Label    string // axis label ("14:00", "Mon 24")
	Long     string // full label for the data table and tooltips
	Segments []Segment
}

// Total is the bar's height in counts.
func (b Bar) Total() int64 {
	var n int64
	for _, s := range b.Segments {
		n += s.Count
	}
	return n
}

// BarChart is a server-rendered stacked bar chart with a text alternative.
type BarChart struct {
	ID, Title, Summary string
	Bars               []Bar
	Legend             []Segment // keys and labels, in stacking order
	LabelEvery         int       // show every n-th axis label
}

// Chart geometry, in SVG user units. The plot's SVG stretches to its box
// (preserveAspectRatio="none"): it holds only bars and grid lines, whose strokes do
// not scale; every label is HTML around it, so it keeps the page's font size on a
// phone as on a wide screen.
const (
	chartW, chartH   = 720.0, 160.0
	chartPadT        = 4.0
	chartBarGapRatio = 0.25
	// maxAxisLabels keeps the x-axis readable at phone width.
	maxAxisLabels = 8
)

func (c BarChart) max() int64 {
	var m int64 = 1
	for _, b := range c.Bars {
		m = max(m, b.Total())
	}
	return m
}

// rect is one drawn segment.
type rect struct {
	X, Y, W, H float64
	Key, Title string
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func (c BarChart) viewBox() string { return fmt.Sprintf("0 0 %g %g", chartW, chartH) }

func (c BarChart) slot() float64 {
	if len(c.Bars) == 0 {
		return 0
	}
	return chartW / float64(len(c.Bars))
}

// rects lays out every segment of every bar, stacked bottom-up in legend order.
func (c BarChart) rects() []rect {
	var out []rect
	plotH := chartH - chartPadT
	m := float64(c.max())
	slot := c.slot()
	w := slot * (1 - chartBarGapRatio)
	for i, b := range c.Bars {
		x := float64(i)*slot + (slot-w)/2
		y := chartH
		for _, s := range b.Segments {
			if s.Count == 0 {
				continue
			}
			h := plotH * float64(s.Count) / m
			y -= h
			out = append(out, rect{X: x, Y: y, W: w, H: h, Key: s.Key, Title: fmt.Sprintf("%s: %d %s", b.Long, s.Count, strings.ToLower(s.Label))})
		}
	}
	return out
}

// axisLabel is one bar's x-axis label: empty between the shown ones; Minor ones
// are left out on a phone, which shows every other.
type axisLabel struct {
	Text  string
	Minor bool
}

// xLabels are the x-axis labels, one per bar: at most maxAxisLabels are shown,
// evenly spaced, and half of them on a phone.
func (c BarChart) xLabels() []axisLabel {
	every := max(1, c.LabelEvery, (len(c.Bars)+maxAxisLabels-1)/maxAxisLabels)
	out := make([]axisLabel, len(c.Bars))
	for i, b := range c.Bars {
		if i%every == 0 {
			out[i] = axisLabel{Text: b.Label, Minor: (i/every)%2 == 1}
		}
	}
	return out
}

// gridline is a horizontal line with its count.
type gridline struct {
	Y    float64
	Text string
}

// grid returns the lines at the top, the middle and the bottom of the plot, top first.
func (c BarChart) grid() []gridline {
	m := c.max()
	plotH := chartH - chartPadT
	var out []gridline
	for _, frac := range []float64{1, 0.5, 0} {
		v := float64(m) * frac
		text := strconv.FormatInt(int64(v), 10)
		if v != float64(int64(v)) {
			text = "" // counts are whole: no label at half of an odd top
		}
		out = append(out, gridline{Y: chartH - plotH*frac, Text: text})
	}
	return out
}

func (c BarChart) countOf(b Bar, key string) string {
	for _, s := range b.Segments {
		if s.Key == key {
			return strconv.FormatInt(s.Count, 10)
		}
	}
	return "0"
}

// Dot is one refresh on a connection's history strip.
type Dot struct {
	Frac  float64 // position between the first and last refresh, 0..1
	OK    bool
	Title string
}

// HistoryStrip is a connection's recent refresh outcomes along a time line.
type HistoryStrip struct {
	Summary string
	Dots    []Dot
	// Ticks label the time axis under the strip: its start, middle and end.
	Ticks []string
}

func (d Dot) cx() string { return f1(12 + d.Frac*(chartW-24)) }

func dotClass(ok bool) string {
	if ok {
		return "dot dot-ok"
	}
	return "dot dot-failed"
}
