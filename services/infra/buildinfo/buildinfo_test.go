package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestLinkTimeValuesWin(t *testing.T) {
	i := read("v1.4.0", "0123456789abcdef0123", "2026-01-02T03:04:05Z")
	if i.Version != "v1.4.0" || i.Commit != "0123456789abcdef0123" || i.Date != "2026-01-02T03:04:05Z" || i.DateIsVCS {
		t.Fatalf("read = %+v", i)
	}
	if got := i.Short(); got != "v1.4.0 (0123456789ab)" {
		t.Errorf("Short = %q", got)
	}
	out := i.String()
	for _, want := range []string{"grconnect v1.4.0\n", "commit:  0123456789abcdef0123\n", "built:   2026-01-02T03:04:05Z\n", "go:      " + runtime.Version()} {
		if !strings.Contains(out, want) {
			t.Errorf("String lacks %q:\n%s", want, out)
		}
	}
}

func TestWithoutLinkTimeValues(t *testing.T) {
	i := read("", "", "")
	// A test binary has no module version: "devel", never empty.
	if i.Version == "" || i.GoVersion == "" || i.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("read = %+v", i)
	}
	if !strings.HasPrefix(i.String(), "grconnect "+i.Version+"\n") {
		t.Errorf("String = %q", i.String())
	}
}
