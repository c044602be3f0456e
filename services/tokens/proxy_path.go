package tokens

import (
	"net/url"
	"strings"

	"github.com/grconnect/grconnect/models"
)

// CleanProxyPath checks the part of a proxy URL after /proxy, still percent-encoded,
// and returns it as a path relative to the API base. It refuses anything that could
// leave the base or be read differently by another server: empty, "." and ".."
// segments (also when encoded, as %2e), encoded slashes or percent signs (%2f, %25),
// backslashes, and any character outside the plain URL path set.
func CleanProxyPath(escaped string) (string, error) {
	bad := models.FieldErrors{"path": "Give a GetResponse API path after /proxy, like /proxy/contacts; it may not contain \"..\", \"//\", backslashes, encoded slashes or a full URL."}
	rest, ok := strings.CutPrefix(escaped, "/")
	if !ok || rest == "" || len(escaped) > 2000 {
		return "", bad
	}
	segments := strings.Split(rest, "/")
	for i, seg := range segments {
		if seg == "" && i == len(segments)-1 && i > 0 {
			continue // a trailing slash
		}
		dec, err := url.PathUnescape(seg)
		if err != nil || dec == "" || dec == "." || dec == ".." {
			return "", bad
		}
		for j := 0; j < len(dec); j++ {
			if !pathByte(dec[j]) {
				return "", bad
			}
		}
		segments[i] = dec
	}
	return "/" + strings.Join(segments, "/"), nil
}

// pathByte reports whether c may appear in a proxied path segment as it is: letters,
// digits and the URL path punctuation that needs no escaping, but neither "%" nor
// ";" (which some servers read as a parameter).
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,=:@", c) >= 0
}
