package handlers

import (
	_ "embed" // the OpenAPI document
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDocument describes /api/v1. A test checks that every /api/v1 route of the
// router appears in it.
//
//go:embed openapi.json
var openAPIDocument []byte

func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDocument)
}

// downloadOpenAPI serves the same document to a signed-in operator's browser, as a
// file to save (the API's own route wants an API key, which a browser does not send).
func (s *Server) downloadOpenAPI(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="grconnect-openapi.json"`)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDocument)
}
