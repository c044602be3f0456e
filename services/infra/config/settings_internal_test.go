package config

import (
	"strings"
	"testing"
)

// TestSettingsTable holds the table's rows whole: each setting names its variable,
// flag and help once, and parses its own value.
func TestSettingsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range settings {
		if s.apply == nil || s.usage == "" || s.flag == "" || !strings.HasPrefix(s.env, "GRCONNECT_") {
			t.Errorf("%s: incomplete row (apply, usage, flag and a GRCONNECT_ name are needed)", s.env)
		}
		if seen[s.env] || seen["--"+s.flag] {
			t.Errorf("%s (--%s) appears twice", s.env, s.flag)
		}
		seen[s.env], seen["--"+s.flag] = true, true
		if want := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(s.env, "GRCONNECT_"), "_", "-")); s.flag != want {
			t.Errorf("%s: flag --%s, want --%s (PRODUCT.md: env GRCONNECT_X, flag --x)", s.env, s.flag, want)
		}
	}
}
