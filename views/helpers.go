package views

import (
	"net/http"
	"strconv"
)

func brandHref(p Page) string {
	if p.Public || p.Operator == "" {
		return "#"
	}
	return "/"
}

func flashKind(k string) string {
	if k == "error" {
		return "error"
	}
	return "success"
}

func statusText(code int) string {
	return strconv.Itoa(code) + " · " + http.StatusText(code)
}
