package config_test

import (
	"strings"
	"testing"
)

// TestBaseURLFollowsALocalAddr: --addr alone gives links that work on this machine
// when the address is local, and keeps the default with a warning otherwise; a set
// base URL always wins.
func TestBaseURLFollowsALocalAddr(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string
		warning bool
	}{
		{"default address", nil, nil, "http://localhost:8080", false},
		{"every interface", nil, []string{"--addr", ":9000"}, "http://localhost:9000", false},
		{"loopback", nil, []string{"--addr", "127.0.0.1:9001"}, "http://127.0.0.1:9001", false},
		{"localhost", nil, []string{"--addr", "localhost:9002"}, "http://localhost:9002", false},
		{"IPv6 loopback", nil, []string{"--addr", "[::1]:9003"}, "http://[::1]:9003", false},
		{"from the variable", map[string]string{"GRCONNECT_ADDR": ":9004"}, nil, "http://localhost:9004", false},
		{"a LAN address", nil, []string{"--addr", "192.168.1.20:9005"}, "http://localhost:8080", true},
		{"a host name", nil, []string{"--addr", "connect.internal:9006"}, "http://localhost:8080", true},
		{"base URL flag wins", nil, []string{"--addr", ":9007", "--base-url", "https://connect.example.com"}, "https://connect.example.com", false},
		{"base URL variable wins", map[string]string{"GRCONNECT_BASE_URL": "https://connect.example.com"}, []string{"--addr", "10.0.0.5:9008"}, "https://connect.example.com", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.env, tc.args...)
			if c.BaseURL != tc.want {
				t.Errorf("BaseURL = %q, want %q", c.BaseURL, tc.want)
			}
			if got := len(c.Warnings) > 0; got != tc.warning {
				t.Fatalf("warnings = %q, want a warning: %v", c.Warnings, tc.warning)
			}
			if tc.warning && (!strings.Contains(c.Warnings[0], "GRCONNECT_BASE_URL") || !strings.Contains(c.Warnings[0], tc.args[1])) {
				t.Errorf("warning %q does not name the setting and the address", c.Warnings[0])
			}
		})
	}
}
