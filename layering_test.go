package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLayering holds the imports to the house rules (docs/architecture.md): main →
// server → handlers → services → models; handlers → views; services →
// services/getresponse; config, secrets, metrics and buildinfo are leaves; the test fake
// (getresponsetest) is imported only by demo mode and tests.
func TestLayering(t *testing.T) {
	const module = "github.com/grconnect/grconnect/"
	forbidden := map[string][]string{
		"models":                               {"services", "handlers", "views", "server", "demo", "config", "secrets", "metrics", "services/getresponse"},
		"services":                             {"handlers", "views", "server", "demo", "config", "services/getresponse/getresponsetest", "mailer/mailertest"},
		"services/getresponse":                 {"models", "services", "handlers", "views", "server", "demo", "secrets", "config"},
		"handlers":                             {"server", "demo", "services/getresponse/getresponsetest"},
		"views":                                {"models", "services", "handlers", "server", "demo", "config", "secrets"},
		"config":                               {"models", "services", "handlers", "views", "server", "demo"},
		"secrets":                              {"models", "services", "handlers", "views", "server", "demo", "config"},
		"metrics":                              {"services", "handlers", "views", "server", "demo"},
		"mailer":                               {"models", "services", "handlers", "views", "server", "demo", "config", "secrets"},
		"buildinfo":                            {"models", "services", "handlers", "views", "server", "demo", "config", "secrets", "metrics"},
		"demo":                                 {"handlers", "server"},
		"services/getresponse/getresponsetest": {"models", "services", "handlers", "views", "server", "demo"},
	}
	for pkg, bad := range forbidden {
		files, _ := filepath.Glob(filepath.Join(pkg, "*.go"))
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
					if inner == b || strings.HasPrefix(inner, b+"/") && b != "services/getresponse" && b != "services" {
						t.Errorf("%s imports %s", f, inner)
					}
				}
			}
		}
	}
}
