// Package buildinfo says which grconnect this is: version, commit, build date and
// Go version. A release build names them with -ldflags -X (see README: Releases);
// otherwise they come from what Go records in the binary (runtime/debug): the
// module version and, for a build inside a Git checkout, the commit.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// Set at link time, for example
// -ldflags="-X github.com/grconnect/grconnect/services/infra/buildinfo.version=v1.4.0".
var (
	version string
	commit  string
	date    string
)

// Info describes a build.
type Info struct {
	Version   string // v1.4.0, a pseudo-version, or "devel"
	Commit    string // the full commit hash, "" when unknown
	Modified  bool   // built from a checkout with uncommitted changes
	Date      string // the build time (RFC 3339), or the commit's time when the build's was not given
	DateIsVCS bool   // Date is the commit's time
	GoVersion string
	Platform  string // GOOS/GOARCH
}

var (
	once sync.Once
	info Info
)

// Get returns the running binary's build information.
func Get() Info {
	once.Do(func() { info = read(version, commit, date) })
	return info
}

func read(version, commit, date string) Info {
	i := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.time":
				if i.Date == "" {
					i.Date, i.DateIsVCS = s.Value, true
				}
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
		if bi.GoVersion != "" {
			i.GoVersion = bi.GoVersion
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	i.Version = strings.TrimSuffix(i.Version, "+dirty")
	return i
}

// ShortCommit is the commit's first 12 characters.
func (i Info) ShortCommit() string {
	if len(i.Commit) > 12 {
		return i.Commit[:12]
	}
	return i.Commit
}

// Short is the version in a few words, for the dashboard's footer:
// "v1.4.0 (3f2c1a9b8e7d)".
func (i Info) Short() string {
	s := i.Version
	if c := i.ShortCommit(); c != "" && !strings.Contains(i.Version, c) {
		s += " (" + c + ")"
	}
	if i.Modified {
		s += " modified"
	}
	return s
}

// Short is the running binary's Info.Short.
func Short() string { return Get().Short() }

// String is what grconnect version prints.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "grconnect %s\n", i.Version)
	commit := i.Commit
	if commit == "" {
		commit = "unknown"
	}
	if i.Modified {
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintf(&b, "commit:  %s\n", commit)
	switch {
	case i.Date == "":
		fmt.Fprintf(&b, "built:   unknown\n")
	case i.DateIsVCS:
		fmt.Fprintf(&b, "built:   unknown (commit time %s)\n", i.Date)
	default:
		fmt.Fprintf(&b, "built:   %s\n", i.Date)
	}
	fmt.Fprintf(&b, "go:      %s %s\n", i.GoVersion, i.Platform)
	return b.String()
}
