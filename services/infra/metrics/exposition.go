package metrics

import (
	"strconv"
	"strings"
)

// ContentType is the answer's type: Prometheus's text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// The types a family can declare (its # TYPE line).
const (
	typeCounter   = "counter"
	typeGauge     = "gauge"
	typeHistogram = "histogram"
	typeSummary   = "summary"
)

// family is one metric family: its name, help text and type, and how it writes
// its samples (in the order of their label values, as Prometheus's Go client
// wrote them). A family that writes no sample is left out of the scrape.
type family struct {
	name, help, typ string
	write           func(e *expo)
}

// expo is one scrape: it writes the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), per family a
// # HELP and a # TYPE line, then its samples, one a line: name{label="value",…} value.
// It reads the runtime and the process once, when a family first asks.
type expo struct {
	b       []byte
	pending *family // the family whose header waits for its first sample
	figures figures // the database figures and backups, read at the scrape's start
	rt      *goState
	proc    *procState
}

func (e *expo) goState() *goState {
	if e.rt == nil {
		e.rt = readGoState()
	}
	return e.rt
}

func (e *expo) procState() *procState {
	if e.proc == nil {
		e.proc = readProcState()
	}
	return e.proc
}

// begin starts family f; its header is written with its first sample.
func (e *expo) begin(f *family) { e.pending = f }

// sample writes one sample of the current family: name is the family's name or,
// for a histogram or summary, the family's name and a suffix (_bucket, _sum,
// _count); labels are name/value pairs, the names sorted.
func (e *expo) sample(name string, value float64, labels ...string) {
	if f := e.pending; f != nil {
		e.pending = nil
		e.b = append(e.b, "# HELP "...)
		e.b = append(e.b, f.name...)
		e.b = append(e.b, ' ')
		e.b = appendEscaped(e.b, f.help, false)
		e.b = append(e.b, "\n# TYPE "...)
		e.b = append(e.b, f.name...)
		e.b = append(e.b, ' ')
		e.b = append(e.b, f.typ...)
		e.b = append(e.b, '\n')
	}
	e.b = append(e.b, name...)
	if len(labels) > 0 {
		for i := 0; i < len(labels); i += 2 {
			if i == 0 {
				e.b = append(e.b, '{')
			} else {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, labels[i]...)
			e.b = append(e.b, `="`...)
			e.b = appendEscaped(e.b, labels[i+1], true)
			e.b = append(e.b, '"')
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ' ')
	e.b = appendFloat(e.b, value)
	e.b = append(e.b, '\n')
}

// appendEscaped appends s escaped as the format asks: a backslash and a newline
// everywhere, a double quote in a label value.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !strings.ContainsAny(s, "\\\n\"") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends a value as Go's shortest %g, as the Go client wrote them:
// 1.8e+09, 0.025, +Inf, NaN (and 0, never -0).
func appendFloat(b []byte, v float64) []byte {
	if v == 0 {
		return append(b, '0')
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// formatFloat is a bucket's upper bound or a quantile as a label value (le="+Inf").
func formatFloat(v float64) string { return string(appendFloat(nil, v)) }
