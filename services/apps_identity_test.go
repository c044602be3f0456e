package services_test

import (
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
)

func TestPopupOriginIsAReturnOrigin(t *testing.T) {
	app := &models.App{ReturnOrigins: "https://app.example.com\nhttp://localhost:3000"}
	for origin, want := range map[string]string{
		"https://app.example.com":  "https://app.example.com",
		"HTTPS://APP.EXAMPLE.COM":  "https://app.example.com",
		"http://localhost:3000":    "http://localhost:3000",
		"https://evil.example":     "",
		"https://app.example.com/": "",
		"*":                        "",
		"":                         "",
	} {
		if got := services.PopupOrigin(app, origin); got != want {
			t.Errorf("PopupOrigin(%q) = %q, want %q", origin, got, want)
		}
	}
}
