package services

import (
	"strings"
	"testing"
)

// TestSecretHintNeverGivesAShortSecretAway: "ends in …" shows four characters of a
// long secret, one of a middling one, none of a short one.
func TestSecretHintNeverGivesAShortSecretAway(t *testing.T) {
	t.Parallel()
	for secret, want := range map[string]string{
		"s3cr3t-9f8e7d6c5b4a3f2a": "3f2a",
		"0123456789abcdef":        "cdef",
		"0123456789abc":           "c",
		"abcd":                    "",
		"abcdefg":                 "",
	} {
		if got := secretHint(secret); got != want {
			t.Errorf("secretHint(%q) = %q, want %q", secret, got, want)
		}
	}
}

// TestReturnOriginsNamesEveryBadLine: the form's error lists all the bad lines.
func TestReturnOriginsNamesEveryBadLine(t *testing.T) {
	t.Parallel()
	_, problem := ParseReturnOrigins("https://ok.example.com\nhttps://a.example.com/path\nftp://b.example.com")
	if !strings.Contains(problem, `"https://a.example.com/path", "ftp://b.example.com" are not`) {
		t.Errorf("problem = %q", problem)
	}
	_, problem = ParseReturnOrigins("https://a.example.com/path")
	if !strings.HasSuffix(problem, `"https://a.example.com/path" is not.`) {
		t.Errorf("problem = %q", problem)
	}
	if got, problem := ParseReturnOrigins("https://ok.example.com, http://localhost:3000"); problem != "" || len(got) != 2 {
		t.Errorf("good origins = %v, %q", got, problem)
	}
}
