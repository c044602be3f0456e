package getresponse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bool decodes GetResponse's string booleans ("true", "false") as well as
// JSON booleans, "1"/"0", 1/0 and null (false). It encodes as a JSON boolean.
type Bool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *Bool) UnmarshalJSON(data []byte) error {
	s := strings.ToLower(strings.Trim(string(bytes.TrimSpace(data)), `"`))
	switch s {
	case "true", "1", "yes":
		*b = true
	case "false", "0", "no", "", "null":
		*b = false
	default:
		return fmt.Errorf("getresponse: cannot read %.20q as a boolean", data)
	}
	return nil
}

// timeLayouts are tried in order: GetResponse's own form first.
var timeLayouts = []string{
	"2006-01-02T15:04:05-0700",
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999-0700",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

// Time decodes GetResponse times ("2017-03-13T19:32:52+0000", which
// time.RFC3339 rejects), RFC 3339 times, and null or "" (the zero Time). It
// encodes as RFC 3339, or null when zero.
type Time struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("getresponse: cannot read %.30q as a time", data)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	for _, layout := range timeLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return fmt.Errorf("getresponse: cannot read %.30q as a time", s)
}

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.Format(time.RFC3339))
}

// flexString reads a JSON string, number or boolean as a string, and null as "".
func flexString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case 't', 'f':
		var b bool
		err := json.Unmarshal(raw, &b)
		return strconv.FormatBool(b), err
	case '{', '[':
		return "", fmt.Errorf("getresponse: expected a string, got %.20s", raw)
	}
	var n json.Number
	err := json.Unmarshal(raw, &n)
	return n.String(), err
}

// flexStringPtr is flexString keeping null apart from "".
func flexStringPtr(raw json.RawMessage) (*string, error) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	s, err := flexString(raw)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// decodeObject splits a JSON object into its members; null gives no members.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// fillStrings sets each *string from the member of the same name, leniently.
func fillStrings(m map[string]json.RawMessage, fields map[string]*string) error {
	for name, dst := range fields {
		raw, ok := m[name]
		if !ok {
			continue
		}
		s, err := flexString(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		*dst = s
	}
	return nil
}

// fillJSON decodes the named member into dst if present.
func fillJSON(m map[string]json.RawMessage, name string, dst any) error {
	raw, ok := m[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
