package models

import (
	"context"
	"slices"
)

// AttentionGroup is who must act on a connection: the connections list's default
// order shows the groups most severe first (their order here), each by
// access-token expiry.
type AttentionGroup int

// The attention groups, most severe first.
const (
	// AttentionCustomer: needs_reconnect; only the customer's new consent helps.
	AttentionCustomer AttentionGroup = iota
	// AttentionOperator: a live connection of an app whose credentials or
	// configuration GetResponse refused ("Paused — app X"); the operator fixes the app.
	AttentionOperator
	// AttentionWait: refresh_failing, or a live connection of an app GetResponse
	// refuses for now; nobody but time.
	AttentionWait
	// AttentionHealthy: active, its app healthy.
	AttentionHealthy
	// AttentionOff: disconnected.
	AttentionOff
)

// AttentionOf is the group of a connection in state s of an app in health h.
func AttentionOf(s Status, h AppHealth) AttentionGroup {
	switch {
	case s == StatusNeedsReconnect:
		return AttentionCustomer
	case s == StatusDisconnected:
		return AttentionOff
	case h.OperatorMustAct():
		return AttentionOperator
	case !h.Healthy(), s == StatusRefreshFailing:
		return AttentionWait
	}
	return AttentionHealthy
}

// Attention is the row's group (AttentionOf).
func (r *ConnectionRow) Attention() AttentionGroup { return AttentionOf(r.Status, r.AppHealth) }

// attentionPart is the connections of one stored state whose app is (or is not)
// in a list: the attention order reads each part along the (status, expires_at,
// id) index and merges a group's parts.
type attentionPart struct {
	group  AttentionGroup
	shown  Status // the state the dashboard shows for its rows
	status Status
	// apps, with in, are the apps the part's connections belong to (app_id IN);
	// without in, the apps they do not belong to (app_id NOT IN, when any).
	apps []string
	in   bool
	// Set by planParts: empty when no connection is in the part; byApp when its
	// apps' range of the (app_id, expires_at) index is shorter to walk than its
	// state's range of the (status, expires_at) index.
	empty, byApp bool
}

// planParts reads the connection counts per app and state (counts.go: a few rows)
// to mark each part that holds no connection, and to walk each of the others along
// the shorter of its two index ranges: its state's (every app), or its apps'
// (every state). A part reads rows until it has a page's worth, so a range in which
// it has few rows is walked to its end: the needs-reconnect part of one large app
// is read along the state's range, a paused app's active connections along the
// app's.
func (s *Store) planParts(ctx context.Context, f ConnectionFilter, groups [][]attentionPart) error {
	counts, err := s.connectionCounts(ctx)
	if err != nil {
		return storeError(err, "count connections by app and status")
	}
	for _, g := range groups {
		for i := range g {
			p := &g[i]
			inPart := func(app string) bool {
				if f.AppID != "" && app != f.AppID {
					return false
				}
				return slices.Contains(p.apps, app) == p.in
			}
			var rows, statusRange, appRange int64
			for _, c := range counts {
				if c.Status == p.status {
					statusRange += c.N
					if inPart(c.AppID) {
						rows += c.N
					}
				}
				if (f.AppID != "" && c.AppID == f.AppID) || (f.AppID == "" && p.in && slices.Contains(p.apps, c.AppID)) {
					appRange += c.N
				}
			}
			p.empty = rows == 0
			p.byApp = (f.AppID != "" || p.in) && appRange < statusRange
		}
	}
	return nil
}

// appHealths maps every app that is not healthy to its health (deleted apps too:
// their connections still show by it).
func (s *Store) appHealths(ctx context.Context) (map[string]AppHealth, error) {
	var apps []App
	err := s.db.WithContext(ctx).Select("id, health").Where("health NOT IN (?, '')", AppHealthy).Find(&apps).Error
	out := make(map[string]AppHealth, len(apps))
	for _, a := range apps {
		out[a.ID] = a.Health
	}
	return out, storeError(err, "list the apps' health")
}

// attentionParts lists, group by group, the parts of the connections a displayed
// state filter selects ("live", "" for all, or one of DisplayStatuses), given the
// unhealthy apps' health.
func attentionParts(filter string, unhealthy map[string]AppHealth) [][]attentionPart {
	var operator, refused, sick []string
	for id, h := range unhealthy {
		sick = append(sick, id)
		if h.OperatorMustAct() {
			operator = append(operator, id)
		} else {
			refused = append(refused, id)
		}
	}
	// Sorted, so the same apps make the same statement (and cached plan).
	slices.Sort(operator)
	slices.Sort(refused)
	slices.Sort(sick)
	all := []attentionPart{
		{group: AttentionCustomer, shown: StatusNeedsReconnect, status: StatusNeedsReconnect},
		{group: AttentionOperator, shown: StatusPaused, status: StatusActive, apps: operator, in: true},
		{group: AttentionOperator, shown: StatusPaused, status: StatusRefreshFailing, apps: operator, in: true},
		{group: AttentionWait, shown: StatusRefreshFailing, status: StatusRefreshFailing, apps: sick},
		{group: AttentionWait, shown: StatusPaused, status: StatusActive, apps: refused, in: true},
		{group: AttentionWait, shown: StatusPaused, status: StatusRefreshFailing, apps: refused, in: true},
		{group: AttentionHealthy, shown: StatusActive, status: StatusActive, apps: sick},
		{group: AttentionOff, shown: StatusDisconnected, status: StatusDisconnected},
	}
	var groups [][]attentionPart
	for _, p := range all {
		if p.in && len(p.apps) == 0 {
			continue // no such app: the part is empty
		}
		switch filter {
		case "":
		case "live":
			if p.shown == StatusDisconnected {
				continue
			}
		default:
			if string(p.shown) != filter {
				continue
			}
		}
		if n := len(groups); n > 0 && groups[n-1][0].group == p.group {
			groups[n-1] = append(groups[n-1], p)
		} else {
			groups = append(groups, []attentionPart{p})
		}
	}
	return groups
}
