package services

import (
	"context"
	"errors"
	"time"
	_ "time/tzdata" // the zone database, for hosts and containers without /usr/share/zoneinfo

	"github.com/grconnect/grconnect/models"
)

// SetTimeZone stores the IANA zone (such as "Europe/Warsaw") the dashboard shows
// operator id's times in. An unknown zone comes back as a FieldErrors on "time_zone".
func (o *Operators) SetTimeZone(ctx context.Context, id, zone string) error {
	if _, err := LoadTimeZone(zone); err != nil {
		return models.FieldErrors{"time_zone": "Choose a time zone from the list, such as Europe/Warsaw or UTC."}
	}
	return o.store.SetOperatorTimeZone(ctx, id, zone)
}

// ReportTimeZone stores the zone an operator's browser reports, unless the
// operator has one already (chosen by hand, perhaps a moment ago).
func (o *Operators) ReportTimeZone(ctx context.Context, id, zone string) error {
	if _, err := LoadTimeZone(zone); err != nil {
		return models.FieldErrors{"time_zone": "Choose a time zone from the list, such as Europe/Warsaw or UTC."}
	}
	return o.store.SetOperatorTimeZoneIfUnset(ctx, id, zone)
}

// LoadTimeZone returns the location of an IANA zone name; "" is UTC. Names that
// time.LoadLocation would read as a file path are refused.
func LoadTimeZone(zone string) (*time.Location, error) {
	if zone == "" || zone == "UTC" {
		return time.UTC, nil
	}
	if len(zone) > 64 || zone == "Local" || zone[0] == '/' || zone[0] == '.' {
		return nil, errors.New("unknown time zone")
	}
	for _, r := range zone {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '/' || r == '_' || r == '-' || r == '+') {
			return nil, errors.New("unknown time zone")
		}
	}
	return time.LoadLocation(zone)
}
