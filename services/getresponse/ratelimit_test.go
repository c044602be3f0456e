package getresponse_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
)

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		name                 string
		limit, remain, reset string
		want                 getresponse.RateLimit
	}{
		{"getresponse form", "30000", "29995", "432 seconds", getresponse.RateLimit{Limit: 30000, Remaining: 29995, Reset: 432 * time.Second, Known: true}},
		{"bare integer reset", "80", "0", "1", getresponse.RateLimit{Limit: 80, Remaining: 0, Reset: time.Second, Known: true}},
		{"singular unit", "30000", "1", "1 second", getresponse.RateLimit{Limit: 30000, Remaining: 1, Reset: time.Second, Known: true}},
		{"minutes", "", "", "2 minutes", getresponse.RateLimit{Reset: 2 * time.Minute, Known: true}},
		{"go-ish unit", "", "", "30s", getresponse.RateLimit{Reset: 30 * time.Second, Known: true}},
		{"spaces", " 30000 ", " 12 ", " 100 seconds ", getresponse.RateLimit{Limit: 30000, Remaining: 12, Reset: 100 * time.Second, Known: true}},
		{"absent", "", "", "", getresponse.RateLimit{}},
		{"garbage", "lots", "-", "soon", getresponse.RateLimit{}},
		{"negative reset", "", "", "-5 seconds", getresponse.RateLimit{}},
		{"only remaining", "", "7", "", getresponse.RateLimit{Remaining: 7, Known: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			set := func(k, v string) {
				if v != "" {
					h.Set(k, v)
				}
			}
			set("X-RateLimit-Limit", tt.limit)
			set("X-RateLimit-Remaining", tt.remain)
			set("X-RateLimit-Reset", tt.reset)
			if got := getresponse.ParseRateLimit(h); got != tt.want {
				t.Errorf("ParseRateLimit() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
