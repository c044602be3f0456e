package views

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestChartGeometry(t *testing.T) {
	c := BarChart{ID: "c", Title: "T", Summary: "S", Legend: []Segment{{Key: "active", Label: "Active"}, {Key: "refresh_failing", Label: "Failing"}},
		Bars: []Bar{
			{Label: "a", Long: "A", Segments: []Segment{{Key: "active", Label: "Active", Count: 3}, {Key: "refresh_failing", Label: "Failing", Count: 0}}},
			{Label: "b", Long: "B", Segments: []Segment{{Key: "active", Label: "Active", Count: 5}, {Key: "refresh_failing", Label: "Failing", Count: 1}}},
		}}
	rects := c.rects()
	if len(rects) != 3 || rects[0].Key != "active" || rects[1].Key != "active" || rects[2].Key != "refresh_failing" {
		t.Fatalf("rects = %+v", rects)
	}
	// Stacked bottom-up; the tallest bar fills the plot; heights are proportional.
	if rects[2].Y+rects[2].H != rects[1].Y || rects[2].Y < chartPadT-0.01 || rects[2].Y > chartPadT+0.01 {
		t.Fatalf("stacking: %+v", rects)
	}
	if r := rects[0].H / rects[1].H; r < 0.59 || r > 0.61 {
		t.Fatalf("3 vs 5 drawn with ratio %v", r)
	}
	var buf bytes.Buffer
	if err := Chart(c).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{`role="img"`, `<title id="c-t">T</title>`, `<desc id="c-d">S</desc>`, `<th scope="row">B</th>`, `<td class="num">5</td>`, "B: 1 failing"} {
		if !strings.Contains(html, want) {
			t.Errorf("chart HTML lacks %q", want)
		}
	}
}
