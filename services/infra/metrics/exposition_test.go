package metrics

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// A strict reader of the text exposition format 0.0.4, written from the format's
// rules (https://prometheus.io/docs/instrumenting/exposition_formats/) so that
// the tests check what grconnect writes without the Prometheus client. Where the
// format leaves a choice it takes the stricter one: every family has exactly one
// # HELP and one # TYPE line, before its first sample; tokens are separated by a
// single space and lines carry no timestamp (grconnect writes none).

// parsedFamily is one family of a scrape.
type parsedFamily struct {
	name, help, typ string
	samples         []parsedSample
}

// parsedSample is one sample line.
type parsedSample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	valueRE      = regexp.MustCompile(`^(NaN|[+-]Inf|[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?)$`)
)

// parseExposition reads a whole scrape, or says which line breaks which rule.
func parseExposition(body string) (map[string]*parsedFamily, error) {
	families := map[string]*parsedFamily{}
	if body == "" {
		return families, nil
	}
	if !strings.HasSuffix(body, "\n") {
		return nil, fmt.Errorf("the last line does not end with a newline")
	}
	var current *parsedFamily
	seenSeries := map[string]bool{}
	for n, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", n+1, line, fmt.Sprintf(format, args...))
		}
		if !utf8.ValidString(line) {
			return nil, fail("not valid UTF-8")
		}
		if line == "" {
			return nil, fail("an empty line")
		}
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			keyword, rest, _ := strings.Cut(rest, " ")
			if keyword != "HELP" && keyword != "TYPE" {
				continue // a comment
			}
			name, text, ok := strings.Cut(rest, " ")
			if !ok || !metricNameRE.MatchString(name) {
				return nil, fail("a %s line without a valid metric name and text", keyword)
			}
			f := families[name]
			if f == nil {
				f = &parsedFamily{name: name}
				families[name] = f
			} else if f != current {
				return nil, fail("family %s continues after another family", name)
			}
			if len(f.samples) > 0 {
				return nil, fail("%s after the family's samples", keyword)
			}
			current = f
			switch keyword {
			case "HELP":
				if f.help != "" {
					return nil, fail("a second HELP")
				}
				help, err := unescape(text, false)
				if err != nil {
					return nil, fail("%v", err)
				}
				if help == "" {
					return nil, fail("an empty HELP")
				}
				f.help = help
			case "TYPE":
				if f.typ != "" {
					return nil, fail("a second TYPE")
				}
				switch text {
				case "counter", "gauge", "histogram", "summary", "untyped":
					f.typ = text
				default:
					return nil, fail("unknown type %q", text)
				}
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fail("%v", err)
		}
		if current == nil || current.help == "" || current.typ == "" {
			return nil, fail("a sample before its family's HELP and TYPE")
		}
		if !belongs(current, s) {
			return nil, fail("sample %s is not of family %s (%s)", s.name, current.name, current.typ)
		}
		key := seriesKey(s)
		if seenSeries[key] {
			return nil, fail("a second sample of the same series")
		}
		seenSeries[key] = true
		current.samples = append(current.samples, s)
	}
	for _, f := range families {
		if f.help == "" || f.typ == "" {
			return nil, fmt.Errorf("family %s lacks its HELP or TYPE", f.name)
		}
		if len(f.samples) == 0 {
			return nil, fmt.Errorf("family %s has no sample", f.name)
		}
		if err := checkFamily(f); err != nil {
			return nil, fmt.Errorf("family %s: %v", f.name, err)
		}
	}
	return families, nil
}

// parseSample reads name{label="value",…} value.
func parseSample(line string) (parsedSample, error) {
	s := parsedSample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, fmt.Errorf("no value")
	}
	s.name, line = line[:i], line[i:]
	if !metricNameRE.MatchString(s.name) {
		return s, fmt.Errorf("invalid metric name %q", s.name)
	}
	if strings.HasPrefix(line, "{") {
		line = line[1:]
		for !strings.HasPrefix(line, "}") {
			name, rest, ok := strings.Cut(line, `="`)
			if !ok || !labelNameRE.MatchString(name) || strings.HasPrefix(name, "__") {
				return s, fmt.Errorf("invalid label name in %q", line)
			}
			if _, dup := s.labels[name]; dup {
				return s, fmt.Errorf("label %s twice", name)
			}
			// The value runs to the first double quote no backslash escapes.
			end := -1
			for j := 0; j < len(rest); j++ {
				if rest[j] == '\\' {
					j++
				} else if rest[j] == '"' {
					end = j
					break
				}
			}
			if end < 0 {
				return s, fmt.Errorf("label %s's value is not closed", name)
			}
			value, err := unescape(rest[:end], true)
			if err != nil {
				return s, fmt.Errorf("label %s: %v", name, err)
			}
			s.labels[name] = value
			line = rest[end+1:]
			if next, ok := strings.CutPrefix(line, ","); ok {
				line = next
			} else if !strings.HasPrefix(line, "}") {
				return s, fmt.Errorf("neither , nor } after label %s", name)
			}
		}
		line = line[1:]
	}
	value, ok := strings.CutPrefix(line, " ")
	if !ok || !valueRE.MatchString(value) {
		return s, fmt.Errorf("invalid value %q (one space, a float, no timestamp)", line)
	}
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}

// unescape reads a HELP text (escapes \\ and \n) or a label value (also \").
func unescape(s string, quoted bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' && quoted {
			return "", fmt.Errorf("an unescaped double quote")
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch {
		case i == len(s):
			return "", fmt.Errorf("a backslash at the end")
		case s[i] == '\\':
			b.WriteByte('\\')
		case s[i] == 'n':
			b.WriteByte('\n')
		case s[i] == '"' && quoted:
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("an unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// belongs says whether s is a sample family f may have.
func belongs(f *parsedFamily, s parsedSample) bool {
	switch f.typ {
	case "histogram":
		return s.name == f.name+"_bucket" || s.name == f.name+"_sum" || s.name == f.name+"_count"
	case "summary":
		return s.name == f.name || s.name == f.name+"_sum" || s.name == f.name+"_count"
	}
	return s.name == f.name
}

// seriesKey names a sample's series: its name and its labels, sorted.
func seriesKey(s parsedSample) string {
	var pairs []string
	for k, v := range s.labels {
		pairs = append(pairs, strconv.Quote(k)+"="+strconv.Quote(v))
	}
	slices.Sort(pairs)
	return s.name + "{" + strings.Join(pairs, ",") + "}"
}

// groupKey names a histogram's or summary's series group: its labels but le or quantile.
func groupKey(s parsedSample, drop string) string {
	rest := parsedSample{labels: map[string]string{}}
	for k, v := range s.labels {
		if k != drop {
			rest.labels[k] = v
		}
	}
	return seriesKey(rest)
}

// checkFamily checks the rules of the family's type.
func checkFamily(f *parsedFamily) error {
	switch f.typ {
	case "counter":
		for _, s := range f.samples {
			if s.value < 0 || math.IsNaN(s.value) {
				return fmt.Errorf("counter value %v", s.value)
			}
		}
	case "histogram":
		type group struct {
			lastLE, cumulative   float64 // the last bucket's bound and count
			inf, sum, count      bool
			infValue, countValue float64
		}
		groups := map[string]*group{}
		var order []string
		for _, s := range f.samples {
			drop := ""
			if s.name == f.name+"_bucket" {
				drop = "le"
			}
			k := groupKey(s, drop)
			g := groups[k]
			if g == nil {
				g = &group{lastLE: math.Inf(-1)}
				groups[k] = g
				order = append(order, k)
			}
			switch s.name {
			case f.name + "_bucket":
				le, ok := s.labels["le"]
				if !ok {
					return fmt.Errorf("a bucket without le")
				}
				bound, err := strconv.ParseFloat(le, 64)
				if err != nil || (math.IsInf(bound, 1) && le != "+Inf") {
					return fmt.Errorf("bucket bound %q", le)
				}
				if g.inf || g.sum || g.count {
					return fmt.Errorf("%s: a bucket after the +Inf bucket, the sum or the count", k)
				}
				if bound <= g.lastLE {
					return fmt.Errorf("%s: bucket bounds not increasing at le=%q", k, le)
				}
				if s.value < g.cumulative || s.value != math.Trunc(s.value) {
					return fmt.Errorf("%s: bucket le=%q holds %v after %v: not cumulative counts", k, le, s.value, g.cumulative)
				}
				g.lastLE, g.cumulative = bound, s.value
				if math.IsInf(bound, 1) {
					g.inf, g.infValue = true, s.value
				}
			case f.name + "_sum":
				if !g.inf {
					return fmt.Errorf("%s: the sum before the +Inf bucket", k)
				}
				g.sum = true
			case f.name + "_count":
				if !g.inf {
					return fmt.Errorf("%s: the count before the +Inf bucket", k)
				}
				g.count, g.countValue = true, s.value
			}
		}
		for _, k := range order {
			g := groups[k]
			switch {
			case !g.inf:
				return fmt.Errorf("%s: no +Inf bucket", k)
			case !g.sum || !g.count:
				return fmt.Errorf("%s: no _sum or no _count", k)
			case g.countValue != g.infValue:
				return fmt.Errorf("%s: _count %v is not the +Inf bucket's %v", k, g.countValue, g.infValue)
			}
		}
	case "summary":
		type group struct{ sum, count bool }
		groups := map[string]*group{}
		for _, s := range f.samples {
			k := groupKey(s, "quantile")
			if groups[k] == nil {
				groups[k] = &group{}
			}
			switch s.name {
			case f.name:
				q, err := strconv.ParseFloat(s.labels["quantile"], 64)
				if err != nil || q < 0 || q > 1 {
					return fmt.Errorf("quantile %q", s.labels["quantile"])
				}
			case f.name + "_sum":
				groups[k].sum = true
			case f.name + "_count":
				groups[k].count = true
			}
		}
		for k, g := range groups {
			if !g.sum || !g.count {
				return fmt.Errorf("%s: no _sum or no _count", k)
			}
		}
	}
	return nil
}

// TestStrictParserRejects: the strict reader rejects each way a scrape can break
// the format, so its passing a scrape means something.
func TestStrictParserRejects(t *testing.T) {
	t.Parallel()
	const header = "# HELP x_total Things.\n# TYPE x_total counter\n"
	const hist = "# HELP h Durations.\n# TYPE h histogram\n"
	valid := header + "x_total{a=\"1\"} 2\n" + hist + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n"
	if _, err := parseExposition(valid); err != nil {
		t.Fatalf("a valid scrape rejected: %v", err)
	}
	for _, tc := range []struct{ name, body string }{
		{"no final newline", strings.TrimSuffix(valid, "\n")},
		{"sample before TYPE", "# HELP x_total Things.\nx_total 1\n# TYPE x_total counter\n"},
		{"no HELP", "# TYPE x_total counter\nx_total 1\n"},
		{"two TYPEs", header + "# TYPE x_total counter\nx_total 1\n"},
		{"two HELPs", "# HELP x_total A.\n" + header + "x_total 1\n"},
		{"unknown type", "# HELP x Things.\n# TYPE x thing\nx 1\n"},
		{"family split", header + "x_total{a=\"1\"} 1\n" + hist + "h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\nx_total{a=\"2\"} 1\n"},
		{"family header again", header + "x_total 1\n" + header},
		{"sample of another family", header + "y_total 1\n"},
		{"unescaped quote", header + "x_total{a=\"say \"hi\"\"} 1\n"},
		{"unknown escape", header + "x_total{a=\"tab\\t\"} 1\n"},
		{"backslash at the end", header + "x_total{a=\"x\\\"} 1\n"},
		{"unclosed value", header + "x_total{a=\"x} 1\n"},
		{"bad label name", header + "x_total{1a=\"x\"} 1\n"},
		{"reserved label name", header + "x_total{__name__=\"x\"} 1\n"},
		{"label twice", header + "x_total{a=\"1\",a=\"2\"} 1\n"},
		{"duplicate series", header + "x_total{a=\"1\",b=\"2\"} 1\nx_total{b=\"2\",a=\"1\"} 1\n"},
		{"bad value", header + "x_total 1,5\n"},
		{"timestamp", header + "x_total 1 1700000000000\n"},
		{"two spaces", header + "x_total  1\n"},
		{"negative counter", header + "x_total -1\n"},
		{"invalid UTF-8", header + "x_total{a=\"\xff\"} 1\n"},
		{"empty line", header + "x_total 1\n\n"},
		{"no +Inf bucket", hist + "h_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"},
		{"buckets not cumulative", hist + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"},
		{"bounds not increasing", hist + "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"},
		{"count not +Inf", hist + "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n"},
		{"no sum", hist + "h_bucket{le=\"+Inf\"} 2\nh_count 2\n"},
		{"no count", hist + "h_bucket{le=\"+Inf\"} 2\nh_sum 2\n"},
		{"bucket without le", hist + "h_bucket 2\nh_sum 2\nh_count 2\n"},
		{"bucket bound not a number", hist + "h_bucket{le=\"one\"} 2\nh_bucket{le=\"+Inf\"} 2\nh_sum 2\nh_count 2\n"},
		{"summary without sum", "# HELP s S.\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_count 1\n"},
		{"summary quantile above 1", "# HELP s S.\n# TYPE s summary\ns{quantile=\"2\"} 1\ns_sum 1\ns_count 1\n"},
	} {
		if _, err := parseExposition(tc.body); err == nil {
			t.Errorf("%s: accepted:\n%s", tc.name, tc.body)
		}
	}
}

// TestExpoEscapes: label values and help texts holding backslashes, quotes and
// newlines come back as they were through the strict reader.
func TestExpoEscapes(t *testing.T) {
	t.Parallel()
	odd := []string{`a\b`, `a\nb`, "a\nb", `say "hi"`, `\"`, `\`, "", "tab\there", "ünï 🚀"}
	e := &expo{}
	help := "Help with a \\ backslash,\na newline and \"quotes\"."
	e.begin(&family{name: "odd", help: help, typ: typeGauge})
	for i, v := range odd {
		e.sample("odd", float64(i), "i", strconv.Itoa(i), "v", v)
	}
	families, err := parseExposition(string(e.b))
	if err != nil {
		t.Fatalf("%v\n%s", err, e.b)
	}
	f := families["odd"]
	if f.help != help {
		t.Errorf("help = %q, want %q", f.help, help)
	}
	for i, v := range odd {
		if s := f.samples[i]; s.labels["v"] != v || s.value != float64(i) {
			t.Errorf("sample %d = %q %v, want %q", i, s.labels["v"], s.value, v)
		}
	}
}

// TestExpoValues: values are written as the Go client wrote them (Go's shortest
// %g, which Prometheus reads back exactly).
func TestExpoValues(t *testing.T) {
	t.Parallel()
	for v, want := range map[float64]string{
		0: "0", math.Copysign(0, -1): "0", 1: "1", -1: "-1", 0.025: "0.025", 1234: "1234", 1_800_000_000: "1.8e+09",
		math.MaxInt64: "9.223372036854776e+18", math.Inf(1): "+Inf", math.Inf(-1): "-Inf",
	} {
		if got := string(appendFloat(nil, v)); got != want {
			t.Errorf("%v written as %q, want %q", v, got, want)
		}
	}
	if got := string(appendFloat(nil, math.NaN())); got != "NaN" {
		t.Errorf("NaN written as %q", got)
	}
}
