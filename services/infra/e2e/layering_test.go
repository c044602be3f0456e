package e2e

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// root is the repository's top, seen from this package's folder.
const root = "../../.."

// TestLayering holds the imports to the house rules (docs/architecture.md): main →
// services/infra/cli → services/infra/server → handlers → services → models;
// handlers → views; services → services/getresponse; the infrastructure packages
// under services/infra are leaves or sit beside the domain; the test fake
// (getresponsetest) is imported only by demo mode and tests.
//
// A rule "x" forbids the package x itself; "x/..." forbids x and everything under it.
func TestLayering(t *testing.T) {
	const module = "github.com/grconnect/grconnect/"
	infra := func(names ...string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = "services/infra/" + n
		}
		return out
	}
	all := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	forbidden := map[string][]string{
		"models":                               {"services/...", "handlers/...", "views/..."},
		"services":                             all([]string{"handlers/...", "views/...", "services/getresponse/getresponsetest", "services/infra/mailer/mailertest"}, infra("server", "demo", "config", "cli")),
		"services/getresponse":                 {"models/...", "services", "services/infra/...", "handlers/...", "views/..."},
		"services/getresponse/getresponsetest": {"models/...", "services", "services/infra/...", "handlers/...", "views/..."},
		"handlers":                             all([]string{"services/getresponse/getresponsetest"}, infra("server", "demo", "cli")),
		"views":                                {"models/...", "services/...", "handlers/..."},
		"services/infra/config":                all([]string{"models/...", "services", "handlers/...", "views/..."}, infra("server", "demo", "cli", "metrics", "mailer")),
		"services/infra/secrets":               all([]string{"models/...", "services", "handlers/...", "views/..."}, infra("server", "demo", "cli", "config", "metrics", "mailer")),
		"services/infra/metrics":               all([]string{"services", "handlers/...", "views/..."}, infra("server", "demo", "cli", "config")),
		"services/infra/mailer":                all([]string{"models/...", "services", "handlers/...", "views/..."}, infra("server", "demo", "cli", "config", "secrets", "metrics")),
		"services/infra/buildinfo":             {"models/...", "services/...", "handlers/...", "views/..."},
		"services/infra/netguard":              {"models/...", "services", "services/getresponse/...", "handlers/...", "views/...", "services/infra/server", "services/infra/demo", "services/infra/cli", "services/infra/config", "services/infra/secrets", "services/infra/metrics", "services/infra/mailer", "services/infra/buildinfo"},
		"services/infra/demo":                  all([]string{"handlers/..."}, infra("server", "cli")),
		"services/infra/server":                infra("cli"),
	}
	for pkg, bad := range forbidden {
		files, _ := filepath.Glob(filepath.Join(root, pkg, "*.go"))
		if len(files) == 0 {
			t.Errorf("package %s has no files: update this test", pkg)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				inner, ok := strings.CutPrefix(path, module)
				if !ok {
					continue
				}
				for _, b := range bad {
					prefix, tree := strings.CutSuffix(b, "/...")
					if inner == prefix || tree && strings.HasPrefix(inner, prefix+"/") {
						t.Errorf("%s imports %s", strings.TrimPrefix(f, root+"/"), inner)
					}
				}
			}
		}
	}
}

// TestRootReadsAsTheDesignCard holds the top level to PRODUCT.md's card: main.go
// and the card's folders, plus docs, deploy, sdk and the CI entry point.
func TestRootReadsAsTheDesignCard(t *testing.T) {
	allowed := map[string]bool{
		"go.mod": true, "go.sum": true, "main.go": true, "README.md": true,
		"handlers": true, "views": true, "models": true, "static": true, "services": true,
		"docs": true, "deploy": true, "sdk": true, ".ci": true,
	}
	// What git tracks: a local data/ folder of a test run is not part of the tree.
	out, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Skipf("git ls-files: %v (not a git checkout)", err)
	}
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, _, _ := strings.Cut(f, "/")
		if strings.HasPrefix(name, ".") && name != ".ci" {
			continue // .gitignore and the like
		}
		if !allowed[name] {
			t.Errorf("%s at the top level: the card allows only %v", f, allowed)
		}
	}
}
