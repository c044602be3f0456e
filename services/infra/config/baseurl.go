package config

import (
	"flag"
	"net"
)

// given reports whether a setting came from its variable or its flag rather than
// the default.
func (l *Loader) given(env string) bool {
	if l.fromEnv[env] {
		return true
	}
	set := false
	if l.fs != nil {
		l.fs.Visit(func(f *flag.Flag) { set = set || f.Name == flagName(env) })
	}
	return set
}

// baseURLFromAddr is the public URL to assume when only the listen address was
// set: for a local address (localhost, 127.0.0.1, ::1, or every interface, as in
// ":9000") the same port on localhost, so that the links grconnect prints work
// from this machine; for any other address the default stays, with a warning that
// links will not reach this server.
func baseURLFromAddr(addr, def string) (base, warning string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return def, ""
	}
	switch host {
	case "", "0.0.0.0", "::", "localhost":
		return "http://localhost:" + port, ""
	case "127.0.0.1":
		return "http://127.0.0.1:" + port, ""
	case "::1":
		return "http://[::1]:" + port, ""
	}
	return def, "GRCONNECT_ADDR (--addr) is " + addr + " but GRCONNECT_BASE_URL (--base-url) is not set: connect links and the OAuth redirect URL use " +
		def + ", which does not reach this server; set GRCONNECT_BASE_URL to the address customers and GetResponse use"
}
