package tokens

import (
	"testing"
	"time"
)

func TestExpiringWindowFollowsTheTokenLifetime(t *testing.T) {
	for _, tc := range []struct{ lifetime, want time.Duration }{
		{0, time.Hour},                                      // no tokens: the classic hour
		{24 * time.Hour, time.Hour},                         // day-long tokens: within the hour
		{4 * time.Hour, time.Hour},                          // a quarter of 4 h is the hour
		{time.Hour, 15 * time.Minute},                       // hour-long tokens: not every connection
		{2 * time.Minute, time.Minute},                      // never less than a minute
		{90*time.Minute + 20*time.Second, 23 * time.Minute}, // whole minutes
	} {
		if got := expiringWindow(tc.lifetime); got != tc.want {
			t.Errorf("expiringWindow(%v) = %v, want %v", tc.lifetime, got, tc.want)
		}
	}
}
