package handlers_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestOpenAPIDocumentMatchesTheRouter keeps the OpenAPI document true: every /api/v1
// route of the router is in it, and everything in it is a route.
func TestOpenAPIDocumentMatchesTheRouter(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	r := f.call(http.MethodGet, "/api/v1/openapi.json", nil)
	if r.status != http.StatusOK {
		t.Fatalf("openapi.json = %d", r.status)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Servers) != 1 || doc.Servers[0].URL != "/api/v1" {
		t.Fatalf("openapi %q servers %v", doc.OpenAPI, doc.Servers)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	routed := map[string]bool{}
	for _, rt := range f.srv.Config.Handler.(*echo.Echo).Routes() {
		if !strings.HasPrefix(rt.Path, "/api/v1/") || rt.Method == echo.RouteNotFound {
			continue
		}
		path := strings.TrimPrefix(rt.Path, "/api/v1")
		path = strings.ReplaceAll(path, ":id", "{id}")
		path = strings.ReplaceAll(path, "*", "{path}")
		routed[rt.Method+" "+path] = true
	}
	if len(routed) < 13 {
		t.Fatalf("only %d API routes found: %v", len(routed), routed)
	}
	for route := range routed {
		if !documented[route] {
			t.Errorf("route %s is not in openapi.json", route)
		}
	}
	for op := range documented {
		if !routed[op] {
			t.Errorf("openapi.json documents %s, which is not a route", op)
		}
	}
}
