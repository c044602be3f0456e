// Package e2e holds the process-level tests: the fault-injection suite, replicas on
// one PostgreSQL database, and a backup taken while serving. They build the grconnect
// binary once and drive real processes; set-up commands run in the test process
// through cli.Run, as the binary would run them.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/grconnect/grconnect/services/infra/cli"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// TestMain removes the binary the replica tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, bin := range []string{builtBin, shippedBin} {
		if bin != "" {
			os.RemoveAll(filepath.Dir(bin))
		}
	}
	os.Exit(code)
}

// grconnectBinary builds grconnect once per test run.
func grconnectBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "grconnect-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "grconnect")
		out, err := exec.Command("go", "build", "-o", builtBin, "github.com/grconnect/grconnect").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// result is what one run of a command printed and returned.
type result struct {
	stdout, stderr string
	err            error
}

// runCmd runs the command line args (without the program name) in the test process
// with exactly the environment env.
func runCmd(t testing.TB, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err := cli.Run(context.Background(), append([]string{"grconnect"}, args...), getenv, strings.NewReader(stdin), &stdout, &stderr)
	return result{stdout.String(), stderr.String(), err}
}
