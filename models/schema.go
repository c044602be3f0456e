package models

// migrations is the ordered schema history. Never edit a released migration: add one.
var migrations = []migration{
	{version: 1, name: "initial schema", statements: []string{
		`CREATE TABLE operators (
			id TEXT PRIMARY KEY,
			email TEXT NOT NULL,
			password_hash TEXT NOT NULL,
			session_epoch INTEGER NOT NULL DEFAULT 0,
			last_login_at {{time}},
			created_at {{time}} NOT NULL,
			updated_at {{time}} NOT NULL)`,
		`CREATE UNIQUE INDEX operators_email ON operators (email)`,

		`CREATE TABLE apps (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			client_id TEXT NOT NULL,
			client_secret_enc TEXT NOT NULL,
			client_secret_hint TEXT NOT NULL DEFAULT '',
			edition TEXT NOT NULL,
			max_domain TEXT NOT NULL DEFAULT '',
			auth_url TEXT NOT NULL,
			api_url TEXT NOT NULL,
			return_origins TEXT NOT NULL DEFAULT '',
			demo {{bool}} NOT NULL DEFAULT FALSE,
			created_at {{time}} NOT NULL,
			updated_at {{time}} NOT NULL,
			deleted_at {{time}})`,
		// Names are unique among live apps; a deleted app keeps its name for history.
		`CREATE UNIQUE INDEX apps_name ON apps (name) WHERE deleted_at IS NULL`,

		`CREATE TABLE connections (
			id TEXT PRIMARY KEY,
			app_id TEXT NOT NULL REFERENCES apps (id),
			customer_ref TEXT NOT NULL DEFAULT '',
			account_id TEXT NOT NULL,
			account_email TEXT NOT NULL DEFAULT '',
			account_name TEXT NOT NULL DEFAULT '',
			company_name TEXT NOT NULL DEFAULT '',
			status TEXT NOT NULL,
			access_token_enc TEXT NOT NULL DEFAULT '',
			refresh_token_enc TEXT NOT NULL DEFAULT '',
			token_fingerprint TEXT NOT NULL DEFAULT '',
			expires_at {{time}},
			last_refresh_at {{time}},
			last_error TEXT NOT NULL DEFAULT '',
			failure_count INTEGER NOT NULL DEFAULT 0,
			next_attempt_at {{time}},
			lease_owner TEXT NOT NULL DEFAULT '',
			lease_until {{time}},
			connected_at {{time}} NOT NULL,
			disconnected_at {{time}},
			created_at {{time}} NOT NULL,
			updated_at {{time}} NOT NULL)`,
		`CREATE UNIQUE INDEX connections_app_account ON connections (app_id, account_id)`,
		// The list sorts by expiry (then id, for a stable keyset) and filters by status.
		// Every index on expires_at is rewritten by each refresh, so there are only two;
		// an app filter (operators have few apps) walks the expiry index.
		`CREATE INDEX connections_expires ON connections (expires_at, id)`,
		`CREATE INDEX connections_status_expires ON connections (status, expires_at, id)`,
		// Per-app live counts (apps page, app deletion) read only this index.
		`CREATE INDEX connections_app_status ON connections (app_id, status)`,
		`CREATE INDEX connections_customer_ref ON connections (customer_ref)`,
		`CREATE INDEX connections_account_email ON connections (account_email)`,
		`CREATE INDEX connections_account_name ON connections (account_name)`,
		`CREATE INDEX connections_account_id ON connections (account_id)`,

		`CREATE TABLE connect_links (
			id TEXT PRIMARY KEY,
			token_hash TEXT NOT NULL,
			token_enc TEXT NOT NULL,
			app_id TEXT NOT NULL REFERENCES apps (id),
			customer_ref TEXT NOT NULL DEFAULT '',
			return_url TEXT NOT NULL DEFAULT '',
			connection_id TEXT REFERENCES connections (id) ON DELETE CASCADE,
			created_by TEXT NOT NULL DEFAULT '',
			expires_at {{time}} NOT NULL,
			used_at {{time}},
			created_at {{time}} NOT NULL)`,
		`CREATE UNIQUE INDEX connect_links_token ON connect_links (token_hash)`,
		`CREATE INDEX connect_links_app ON connect_links (app_id, created_at)`,
		`CREATE INDEX connect_links_connection ON connect_links (connection_id, created_at)`,

		`CREATE TABLE auth_states (
			id TEXT PRIMARY KEY,
			state_hash TEXT NOT NULL,
			browser_hash TEXT NOT NULL,
			app_id TEXT NOT NULL REFERENCES apps (id),
			link_id TEXT REFERENCES connect_links (id) ON DELETE CASCADE,
			customer_ref TEXT NOT NULL DEFAULT '',
			connection_id TEXT REFERENCES connections (id) ON DELETE CASCADE,
			return_url TEXT NOT NULL DEFAULT '',
			max_domain TEXT NOT NULL DEFAULT '',
			expires_at {{time}} NOT NULL,
			used_at {{time}},
			created_at {{time}} NOT NULL)`,
		`CREATE UNIQUE INDEX auth_states_state ON auth_states (state_hash)`,
		`CREATE INDEX auth_states_expires ON auth_states (expires_at)`,

		`CREATE TABLE events (
			id {{autoinc}},
			connection_id TEXT REFERENCES connections (id) ON DELETE CASCADE,
			app_id TEXT,
			type TEXT NOT NULL,
			message TEXT NOT NULL DEFAULT '',
			actor TEXT NOT NULL DEFAULT '',
			created_at {{time}} NOT NULL)`,
		`CREATE INDEX events_connection ON events (connection_id, id)`,
		`CREATE INDEX events_created ON events (created_at)`,

		`CREATE TABLE login_throttles (
			key TEXT PRIMARY KEY,
			failures INTEGER NOT NULL,
			window_start {{time}} NOT NULL)`,
	}},
	{version: 2, name: "api keys", statements: []string{
		// Only a hash of each key is kept; the prefix finds the row a presented key claims.
		`CREATE TABLE api_keys (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			prefix TEXT NOT NULL,
			key_hash TEXT NOT NULL,
			created_by TEXT NOT NULL DEFAULT '',
			last_used_at {{time}},
			revoked_at {{time}},
			revoked_by TEXT NOT NULL DEFAULT '',
			created_at {{time}} NOT NULL)`,
		`CREATE UNIQUE INDEX api_keys_prefix ON api_keys (prefix)`,
	}},
	{version: 3, name: "webhooks", statements: []string{
		`ALTER TABLE apps ADD COLUMN webhook_url TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE apps ADD COLUMN webhook_secret_enc TEXT NOT NULL DEFAULT ''`,
		// The outbox: one row per delivery, written in the transaction that records its event.
		`CREATE TABLE webhook_deliveries (
			id {{autoinc}},
			app_id TEXT NOT NULL REFERENCES apps (id),
			connection_id TEXT REFERENCES connections (id) ON DELETE CASCADE,
			event_id BIGINT NOT NULL,
			event_type TEXT NOT NULL,
			payload TEXT NOT NULL,
			status TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0,
			next_attempt_at {{time}} NOT NULL,
			last_status_code INTEGER NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT '',
			lease_owner TEXT NOT NULL DEFAULT '',
			lease_until {{time}},
			created_at {{time}} NOT NULL,
			delivered_at {{time}})`,
		`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at, id)`,
		`CREATE INDEX webhook_deliveries_connection ON webhook_deliveries (connection_id, status, id)`,
		`CREATE INDEX webhook_deliveries_app ON webhook_deliveries (app_id, id)`,
	}},
	{version: 4, name: "refresh stats and bulk jobs", statements: []string{
		// One row per UTC day, bumped in each refresh's transaction: the overview's
		// seven-day chart reads seven rows instead of counting events.
		`CREATE TABLE daily_refresh_stats (
			day TEXT PRIMARY KEY,
			succeeded INTEGER NOT NULL DEFAULT 0,
			failed INTEGER NOT NULL DEFAULT 0)`,
		`CREATE TABLE bulk_jobs (
			id TEXT PRIMARY KEY,
			scope TEXT NOT NULL,
			total INTEGER NOT NULL,
			done INTEGER NOT NULL DEFAULT 0,
			failed INTEGER NOT NULL DEFAULT 0,
			status TEXT NOT NULL,
			created_by TEXT NOT NULL DEFAULT '',
			created_at {{time}} NOT NULL,
			finished_at {{time}})`,
	}},
	{version: 5, name: "byte-ordered search indexes", postgres: []string{
		// The list's prefix search compares with COLLATE "C" on PostgreSQL (byte order,
		// as SQLite's); indexes in the database's collation cannot serve it.
		`DROP INDEX connections_customer_ref`,
		`DROP INDEX connections_account_email`,
		`DROP INDEX connections_account_name`,
		`CREATE INDEX connections_customer_ref ON connections (customer_ref COLLATE "C")`,
		`CREATE INDEX connections_account_email ON connections (account_email COLLATE "C")`,
		`CREATE INDEX connections_account_name ON connections (account_name COLLATE "C")`,
	}},
	{version: 6, name: "fleet-wide proxy limits", statements: []string{
		// Several replicas share GetResponse's per-account limits through these (used on
		// PostgreSQL; one SQLite process keeps them in memory): ten leased call slots
		// per account, and the time until which GetResponse asked to be left alone.
		`CREATE TABLE proxy_slots (
			account_key TEXT NOT NULL,
			slot INTEGER NOT NULL,
			holder TEXT NOT NULL DEFAULT '',
			held_until {{time}},
			PRIMARY KEY (account_key, slot))`,
		`CREATE TABLE proxy_backoff (
			account_key TEXT PRIMARY KEY,
			blocked_until {{time}} NOT NULL)`,
	}},
	{version: 7, name: "durable refreshes and storage probe", statements: []string{
		// token_version counts the token pairs stored for a connection: a refresh's
		// outcome is written only over the pair it refreshed (compare and swap), so a
		// pair received late — after a failed commit, or after the lease expired — is
		// still stored unless a newer one was.
		`ALTER TABLE connections ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0`,
		// interrupted_by names the owner of a refresh lease that expired unreleased:
		// a refresh was sent and its answer never stored (a crash). It stays until the
		// next pair is stored, so a rejection that follows can say why.
		`ALTER TABLE connections ADD COLUMN interrupted_by TEXT NOT NULL DEFAULT ''`,
		// One row that readiness probes update: a write the database must accept.
		`CREATE TABLE store_probe (
			id INTEGER PRIMARY KEY,
			probed_at {{time}} NOT NULL)`,
		`INSERT INTO store_probe (id, probed_at) VALUES (1, CURRENT_TIMESTAMP)`,
	}},
	{version: 8, name: "server-side sessions, install secrets, sweeps", statements: []string{
		// Operator sessions live here, not in the cookie: the cookie holds a random
		// token whose SHA-256 is token_hash, so signing out, a password change or an
		// operator's removal ends a session at once, on every replica.
		`CREATE TABLE operator_sessions (
			id TEXT PRIMARY KEY,
			token_hash TEXT NOT NULL,
			operator_id TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
			user_agent TEXT NOT NULL DEFAULT '',
			ip TEXT NOT NULL DEFAULT '',
			flash TEXT NOT NULL DEFAULT '',
			created_at {{time}} NOT NULL,
			last_seen_at {{time}} NOT NULL,
			expires_at {{time}} NOT NULL)`,
		`CREATE UNIQUE INDEX operator_sessions_token ON operator_sessions (token_hash)`,
		`CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id, created_at)`,
		`CREATE INDEX operator_sessions_expires ON operator_sessions (expires_at)`,
		// Sealed values of the install itself, such as the key check that tells a
		// wrong secret key at start.
		`CREATE TABLE install_secrets (
			name TEXT PRIMARY KEY,
			value_enc TEXT NOT NULL,
			created_at {{time}} NOT NULL)`,
		// The hourly sweeps of old throttle rows, and the cap on a link's pending
		// authorizations, read these.
		`CREATE INDEX login_throttles_window ON login_throttles (window_start)`,
		`CREATE INDEX auth_states_link ON auth_states (link_id, expires_at)`,
	}},
	{version: 9, name: "connection identity, single-use links, demo state", statements: []string{
		// A connection is (app, MAX domain, account): one MAX app serves every MAX
		// customer, each on their own domain. Existing MAX connections take their
		// app's domain, so they keep sending the same X-Domain as before.
		`ALTER TABLE connections ADD COLUMN max_domain TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE connections ADD COLUMN parent_login TEXT NOT NULL DEFAULT ''`,
		`UPDATE connections SET max_domain = (SELECT a.max_domain FROM apps a WHERE a.id = connections.app_id)
			WHERE app_id IN (SELECT id FROM apps WHERE edition <> 'standard' AND max_domain <> '')`,
		`DROP INDEX connections_app_account`,
		`CREATE UNIQUE INDEX connections_identity ON connections (app_id, max_domain, account_id)`,
		// Links: a MAX domain the operator already knows, whether completing may move
		// another customer's connection, revocation, and what completed them.
		`ALTER TABLE connect_links ADD COLUMN max_domain TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE connect_links ADD COLUMN allow_transfer {{bool}} NOT NULL DEFAULT FALSE`,
		`ALTER TABLE connect_links ADD COLUMN revoked_at {{time}}`,
		`ALTER TABLE connect_links ADD COLUMN revoked_by TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE connect_links ADD COLUMN used_connection_id TEXT`,
		`ALTER TABLE connect_links ADD COLUMN used_account TEXT NOT NULL DEFAULT ''`,
		// A pending authorization started from a popup reports to this origin; one
		// ended because another flow completed its link is superseded.
		`ALTER TABLE auth_states ADD COLUMN popup_origin TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE auth_states ADD COLUMN superseded {{bool}} NOT NULL DEFAULT FALSE`,
		// (auth_states (link_id, expires_at) is indexed by migration 8.)
		// What the customer's pages show of the operator's app.
		`ALTER TABLE apps ADD COLUMN logo_url TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE apps ADD COLUMN support_contact TEXT NOT NULL DEFAULT ''`,
		// Demo mode keeps its simulated GetResponse here (sealed), so a restarted
		// demo's connections keep working; seeded_at marks the one-time seeding.
		`CREATE TABLE demo_states (
			app_id TEXT PRIMARY KEY REFERENCES apps (id),
			snapshot_enc TEXT NOT NULL DEFAULT '',
			seeded_at {{time}},
			updated_at {{time}} NOT NULL)`,
	}},
	{version: 10, name: "operator time zones and password reset links", statements: []string{
		// The IANA zone the dashboard shows an operator's times in ('' until the
		// browser reports one or the operator picks one: UTC).
		`ALTER TABLE operators ADD COLUMN time_zone TEXT NOT NULL DEFAULT ''`,
		// One-time links another operator (or the command line) makes for an operator
		// who forgot their password: only a hash of the token is kept.
		`CREATE TABLE password_resets (
			id TEXT PRIMARY KEY,
			operator_id TEXT NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
			token_hash TEXT NOT NULL,
			created_by TEXT NOT NULL DEFAULT '',
			expires_at {{time}} NOT NULL,
			used_at {{time}},
			created_at {{time}} NOT NULL)`,
		`CREATE UNIQUE INDEX password_resets_token ON password_resets (token_hash)`,
		`CREATE INDEX password_resets_operator ON password_resets (operator_id)`,
	}},
	{version: 11, name: "app health and operator alerts", statements: []string{
		// An app's health says who must act when its refreshes fail for everyone:
		// the operator (credentials or configuration rejected) or nobody but time
		// (GetResponse refusing calls). health_retry_at is when the next probe may
		// run; claiming it (a conditional UPDATE) lets one worker of any process probe.
		`ALTER TABLE apps ADD COLUMN health TEXT NOT NULL DEFAULT 'ok'`,
		`ALTER TABLE apps ADD COLUMN health_reason TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE apps ADD COLUMN health_since {{time}}`,
		`ALTER TABLE apps ADD COLUMN health_retry_at {{time}}`,
		`ALTER TABLE apps ADD COLUMN health_failures INTEGER NOT NULL DEFAULT 0`,
		// Operators who want alert e-mails (app health changes, customers to reconnect).
		`ALTER TABLE operators ADD COLUMN alert_email {{bool}} NOT NULL DEFAULT FALSE`,
		// How far the alert mailer has read the events, so each alert goes out once.
		`CREATE TABLE alert_cursor (
			id INTEGER PRIMARY KEY,
			last_event_id INTEGER NOT NULL DEFAULT 0,
			updated_at {{time}})`,
		`INSERT INTO alert_cursor (id, last_event_id) VALUES (1, 0)`,
	}},
	{version: 12, name: "audit log and backup info", statements: []string{
		// Who changed what: one row per operator, API or command-line action that
		// changed something (models.AuditAction), never a secret. Pages walk the ID
		// backwards; the retention sweep deletes by created_at.
		`CREATE TABLE audit_log (
			id {{autoinc}},
			created_at {{time}} NOT NULL,
			actor TEXT NOT NULL,
			ip TEXT NOT NULL DEFAULT '',
			action TEXT NOT NULL,
			target_type TEXT NOT NULL DEFAULT '',
			target_id TEXT NOT NULL DEFAULT '',
			details TEXT NOT NULL DEFAULT '')`,
		`CREATE INDEX audit_log_created ON audit_log (created_at)`,
		`CREATE INDEX audit_log_actor ON audit_log (actor, id)`,
		`CREATE INDEX audit_log_action ON audit_log (action, id)`,
		`CREATE INDEX audit_log_target ON audit_log (target_id, id)`,
		// Empty in a live database: grconnect backup writes one row into its copy
		// (when it was taken, with which keys, by which version), so that restore and
		// verify can tell whether the configured key opens it.
		// IF NOT EXISTS: a backup of an older schema gets the table in its copy.
		`CREATE TABLE IF NOT EXISTS backup_info (
			id INTEGER PRIMARY KEY,
			taken_at {{time}} NOT NULL,
			key_id TEXT NOT NULL,
			previous_key_ids TEXT NOT NULL DEFAULT '',
			schema_version INTEGER NOT NULL,
			grconnect_version TEXT NOT NULL DEFAULT '')`,
	}},
	{version: 14, name: "re-authentication and reset links that die", statements: []string{
		// When the session's operator last confirmed their password: sensitive
		// actions need one in the last 10 minutes (services.ReauthWindow).
		`ALTER TABLE operator_sessions ADD COLUMN reauth_at {{time}}`,
		// Who made a reset link: their password change or "sign out everywhere"
		// retires the links they made, too.
		`ALTER TABLE password_resets ADD COLUMN created_by_id TEXT NOT NULL DEFAULT ''`,
		`CREATE INDEX password_resets_created_by ON password_resets (created_by_id)`,
	}},
	{version: 15, name: "replica heartbeats", statements: []string{
		// One row per serving process on PostgreSQL, named by the prefix of its lease
		// owners and beaten every few seconds: a replica whose beat stopped is gone,
		// and another ends its refresh and webhook leases at once instead of
		// waiting for them to expire.
		`CREATE TABLE replicas (
			id TEXT PRIMARY KEY,
			started_at {{time}} NOT NULL,
			heartbeat_at {{time}} NOT NULL)`,
	}},
	{version: 16, name: "least privilege: key scopes, operator roles, invitations, audit target names", statements: []string{
		// What a key may do (space-separated models.APIScope; '' is every scope, so
		// the keys made before keep working), the one app it is limited to ('' for
		// all), when it stops working, where it was last used from, and the secret
		// it had before it was rolled, which works until previous_until.
		`ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE api_keys ADD COLUMN app_id TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE api_keys ADD COLUMN expires_at {{time}}`,
		`ALTER TABLE api_keys ADD COLUMN last_used_ip TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE api_keys ADD COLUMN previous_hash TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE api_keys ADD COLUMN previous_until {{time}}`,
		`ALTER TABLE api_keys ADD COLUMN rolled_at {{time}}`,
		// Every operator so far could change everything: they stay admins.
		`ALTER TABLE operators ADD COLUMN role TEXT NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'viewer'))`,
		// Single-use invitations: the invitee chooses their own password. Only a hash
		// of the link's token is kept; used and revoked ones stay as history.
		`CREATE TABLE operator_invitations (
			id TEXT PRIMARY KEY,
			email TEXT NOT NULL,
			role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
			token_hash TEXT NOT NULL,
			created_by TEXT NOT NULL DEFAULT '',
			created_by_id TEXT NOT NULL DEFAULT '',
			expires_at {{time}} NOT NULL,
			used_at {{time}},
			operator_id TEXT NOT NULL DEFAULT '',
			revoked_at {{time}},
			revoked_by TEXT NOT NULL DEFAULT '',
			created_at {{time}} NOT NULL)`,
		`CREATE UNIQUE INDEX operator_invitations_token ON operator_invitations (token_hash)`,
		// One open invitation per address: a new one replaces it in the same transaction.
		`CREATE UNIQUE INDEX operator_invitations_open ON operator_invitations (email) WHERE used_at IS NULL AND revoked_at IS NULL`,
		`CREATE INDEX operator_invitations_created_by ON operator_invitations (created_by_id)`,
		// The target's name as it was when the entry was written, so an entry about a
		// deleted app or a removed operator still says whom it was about.
		`ALTER TABLE audit_log ADD COLUMN target_name TEXT NOT NULL DEFAULT ''`,
		// Entries written before: the names their targets have now, where they still exist.
		`UPDATE audit_log SET target_name = COALESCE((SELECT name FROM apps WHERE apps.id = audit_log.target_id), '') WHERE target_type = 'app'`,
		`UPDATE audit_log SET target_name = COALESCE((SELECT email FROM operators WHERE operators.id = audit_log.target_id), '') WHERE target_type = 'operator'`,
		`UPDATE audit_log SET target_name = COALESCE((SELECT name FROM api_keys WHERE api_keys.id = audit_log.target_id), '') WHERE target_type = 'api_key'`,
		`UPDATE audit_log SET target_name = COALESCE((SELECT customer_ref FROM connect_links WHERE connect_links.id = audit_log.target_id), '') WHERE target_type = 'link'`,
		`UPDATE audit_log SET target_name = COALESCE((SELECT ` + connectionNameSQL + ` FROM connections WHERE connections.id = audit_log.target_id), '') WHERE target_type = 'connection'`,
	}},
	{version: 17, name: "events: Standard Webhooks, delivery log, GetResponse events in, callbacks", statements: []string{
		// Which webhook event types an app's webhook gets ('' = every type, also
		// those added later; else a comma-separated list); the signing secret a
		// rotation replaced, still signing beside the new one until
		// webhook_previous_until; the GetResponse callback actions registered for
		// each new connection ('' = none).
		`ALTER TABLE apps ADD COLUMN webhook_events TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE apps ADD COLUMN webhook_previous_secret_enc TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE apps ADD COLUMN webhook_previous_until {{time}}`,
		`ALTER TABLE apps ADD COLUMN callback_actions TEXT NOT NULL DEFAULT ''`,
		// A connection's events URL: only the SHA-256 of its token finds the row
		// (one indexed read per inbound event), the token itself is sealed so the
		// page and the API can show the URL again. Made when first needed.
		`ALTER TABLE connections ADD COLUMN events_token_hash TEXT`,
		`ALTER TABLE connections ADD COLUMN events_token_enc TEXT NOT NULL DEFAULT ''`,
		`CREATE UNIQUE INDEX connections_events_token ON connections (events_token_hash)`,
		// The delivery log: the Standard Webhooks message ID (webhook-id; '' for
		// deliveries queued before: whd_<id>), the delivery a replay repeats, and
		// how long the last attempt took.
		`ALTER TABLE webhook_deliveries ADD COLUMN message_id TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE webhook_deliveries ADD COLUMN replay_of BIGINT`,
		`ALTER TABLE webhook_deliveries ADD COLUMN last_duration_ms INTEGER NOT NULL DEFAULT 0`,
		`CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at)`,
		// GetResponse's own events, kept once per connection and dedup_key (the
		// X-Webhook-ID, or a callback's content hash in its time window) until the
		// relay has turned them into timeline entries and webhook deliveries.
		`CREATE TABLE inbound_events (
			id {{autoinc}},
			connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
			app_id TEXT NOT NULL,
			source TEXT NOT NULL,
			type TEXT NOT NULL,
			dedup_key TEXT NOT NULL,
			webhook_id TEXT NOT NULL DEFAULT '',
			account_id TEXT NOT NULL DEFAULT '',
			payload TEXT NOT NULL,
			received_at {{time}} NOT NULL,
			relay_owner TEXT NOT NULL DEFAULT '',
			relay_until {{time}},
			relayed_at {{time}})`,
		`CREATE UNIQUE INDEX inbound_events_dedup ON inbound_events (connection_id, dedup_key)`,
		// The relay reads the unrelayed ones in order (relayed_at IS NULL), the
		// retention sweep the old relayed ones.
		`CREATE INDEX inbound_events_relay ON inbound_events (relayed_at, id)`,
		// Each connection's GetResponse callback registration: what grconnect wants
		// at GetResponse (registered or removed), retried with backoff until done.
		// access_token_enc keeps a copy of the access token of a disconnected
		// connection (sealed for it) until its callbacks are removed.
		`CREATE TABLE connection_callbacks (
			connection_id TEXT PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
			app_id TEXT NOT NULL,
			want TEXT NOT NULL,
			actions TEXT NOT NULL DEFAULT '',
			state TEXT NOT NULL,
			version INTEGER NOT NULL DEFAULT 1,
			attempts INTEGER NOT NULL DEFAULT 0,
			next_attempt_at {{time}} NOT NULL,
			lease_owner TEXT NOT NULL DEFAULT '',
			lease_until {{time}},
			last_error TEXT NOT NULL DEFAULT '',
			actor TEXT NOT NULL DEFAULT '',
			note TEXT NOT NULL DEFAULT '',
			access_token_enc TEXT NOT NULL DEFAULT '',
			created_at {{time}} NOT NULL,
			updated_at {{time}} NOT NULL,
			done_at {{time}})`,
		`CREATE INDEX connection_callbacks_due ON connection_callbacks (state, next_attempt_at)`,
	}},
	{version: 18, name: "denied connect links", statements: []string{
		// When the customer last declined access on GetResponse through the link
		// (it stays usable): the link lists read "denied" instead of "valid".
		`ALTER TABLE connect_links ADD COLUMN denied_at {{time}}`,
	}},
	{version: 19, name: "a million connections: search anywhere, counts, due picks, proxy shares", statements: []string{
		// Connections per app and state, for the overview, the apps page and the
		// metrics (models/counts.go): triggers append +1/-1 rows, housekeeping
		// folds them.
		`CREATE TABLE connection_counts (
			id {{autoinc}},
			app_id TEXT NOT NULL,
			status TEXT NOT NULL,
			n BIGINT NOT NULL)`,
		`INSERT INTO connection_counts (app_id, status, n) SELECT app_id, status, COUNT(*) FROM connections GROUP BY app_id, status`,
		// The refresher's picks of connections past the keep-alive and of failing
		// ones whose retry is due walk these instead of every active row
		// (models.DueConnections).
		`CREATE INDEX connections_status_refreshed ON connections (status, last_refresh_at)`,
		`CREATE INDEX connections_status_retry ON connections (status, next_attempt_at)`,
		// An app's list in expiry order, its state read from the index (the
		// per-app counts that (app_id, status) served are connection_counts now).
		`DROP INDEX connections_app_status`,
		`CREATE INDEX connections_app_expires ON connections (app_id, expires_at, id, status)`,
		// Deliveries still leased are few: a start that ends a killed server's
		// leases finds them without reading every row.
		`CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (lease_until) WHERE lease_owner <> ''`,
	}, postgres: []string{
		`CREATE FUNCTION connection_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF TG_OP <> 'INSERT' THEN
				INSERT INTO connection_counts (app_id, status, n) VALUES (OLD.app_id, OLD.status, -1);
			END IF;
			IF TG_OP <> 'DELETE' THEN
				INSERT INTO connection_counts (app_id, status, n) VALUES (NEW.app_id, NEW.status, 1);
			END IF;
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER connections_count_insert_delete AFTER INSERT OR DELETE ON connections
			FOR EACH ROW EXECUTE FUNCTION connection_counts_change()`,
		`CREATE TRIGGER connections_count_update AFTER UPDATE OF app_id, status ON connections
			FOR EACH ROW WHEN (OLD.app_id IS DISTINCT FROM NEW.app_id OR OLD.status IS DISTINCT FROM NEW.status)
			EXECUTE FUNCTION connection_counts_change()`,
		// The connection list's search finds any part of an e-mail, account name,
		// customer reference, account ID or MAX domain, ignoring case: a trigram
		// index over the five in lower case (separated by a character no search
		// holds), read through LIKE (models/search.go). It lives in a table of its
		// own, written only when one of the five changes: an index on connections
		// would take a new entry for every refresh (an UPDATE that changes an
		// indexed column adds the new row version to every index).
		`CREATE EXTENSION IF NOT EXISTS pg_trgm`,
		`CREATE TABLE connection_search (
			connection_id TEXT PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
			doc TEXT NOT NULL)`,
		`INSERT INTO connection_search (connection_id, doc) SELECT id, ` + searchDocPG("") + ` FROM connections`,
		`CREATE INDEX connection_search_doc ON connection_search USING gin (doc gin_trgm_ops)`,
		`CREATE FUNCTION connection_search_change() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO connection_search (connection_id, doc) VALUES (NEW.id, ` + searchDocPG("NEW.") + `)
				ON CONFLICT (connection_id) DO UPDATE SET doc = excluded.doc;
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER connections_search_insert AFTER INSERT ON connections
			FOR EACH ROW EXECUTE FUNCTION connection_search_change()`,
		`CREATE TRIGGER connections_search_update AFTER UPDATE OF account_email, account_name, customer_ref, account_id, max_domain ON connections
			FOR EACH ROW WHEN (OLD.account_email IS DISTINCT FROM NEW.account_email OR OLD.account_name IS DISTINCT FROM NEW.account_name
				OR OLD.customer_ref IS DISTINCT FROM NEW.customer_ref OR OLD.account_id IS DISTINCT FROM NEW.account_id
				OR OLD.max_domain IS DISTINCT FROM NEW.max_domain)
			EXECUTE FUNCTION connection_search_change()`,
		// The list of one state also reads the app from the index: a count of the
		// active connections that leaves out a paused app's reads no row.
		`DROP INDEX connections_status_expires`,
		`CREATE INDEX connections_status_expires ON connections (status, expires_at, id) INCLUDE (app_id)`,
		// Room on each page for a lease's UPDATE to keep the row on its page,
		// which spares the indexes a new entry (no indexed column changes).
		`ALTER TABLE connections SET (fillfactor = 85)`,
		// Each replica's share of a GetResponse account's proxy limits, agreed a
		// few times a second by the replicas using the account (services/proxy_fleet.go).
		// proxy_slots (migration 6) is no longer used; replicas of the release
		// before still read it during a rolling upgrade.
		`CREATE TABLE proxy_shares (
			account_key TEXT NOT NULL,
			replica TEXT NOT NULL,
			want INTEGER NOT NULL,
			held INTEGER NOT NULL,
			expires_at TIMESTAMPTZ NOT NULL,
			PRIMARY KEY (account_key, replica))`,
		`CREATE INDEX proxy_shares_replica ON proxy_shares (replica)`,
		`ANALYZE connections`,
	}, sqlite: []string{
		// Leases still held are few: a start that ends a killed server's leases
		// finds them without reading every row. (PostgreSQL ends only a stopped
		// replica's, rarely; there the index would make every lease a write to
		// every index.)
		`CREATE INDEX connections_leased ON connections (lease_until) WHERE lease_owner <> ''`,
		`CREATE TRIGGER connections_count_insert AFTER INSERT ON connections BEGIN
			INSERT INTO connection_counts (app_id, status, n) VALUES (new.app_id, new.status, 1);
		END`,
		`CREATE TRIGGER connections_count_update AFTER UPDATE OF app_id, status ON connections
			WHEN old.app_id IS NOT new.app_id OR old.status IS NOT new.status BEGIN
			INSERT INTO connection_counts (app_id, status, n) VALUES (old.app_id, old.status, -1), (new.app_id, new.status, 1);
		END`,
		`CREATE TRIGGER connections_count_delete AFTER DELETE ON connections BEGIN
			INSERT INTO connection_counts (app_id, status, n) VALUES (old.app_id, old.status, -1);
		END`,
		// The list's two orders carry what its filters and a search read, so that
		// walking them never fetches a row that is not shown (a row holds two sealed
		// tokens: a million of them do not stay in memory).
		`DROP INDEX connections_expires`,
		`CREATE INDEX connections_expires ON connections
			(expires_at, id, status, app_id, account_email, account_name, customer_ref, account_id, max_domain)`,
		`DROP INDEX connections_status_expires`,
		`CREATE INDEX connections_status_expires ON connections
			(status, expires_at, id, app_id, account_email, account_name, customer_ref, account_id, max_domain)`,
		// The search on SQLite: an FTS5 trigram index (case-folded) over the five
		// fields. Its rows are numbered by connection_search, whose INTEGER PRIMARY
		// KEY is kept by VACUUM and backups (a table's implicit rowid may not be),
		// and triggers keep both in step with every write.
		`CREATE TABLE connection_search (
			id INTEGER PRIMARY KEY,
			connection_id TEXT NOT NULL UNIQUE)`,
		`CREATE VIRTUAL TABLE connection_search_index USING fts5(
			account_email, account_name, customer_ref, account_id, max_domain,
			content = '', contentless_delete = 1, tokenize = 'trigram')`,
		// Filled from the new list index, which holds the five fields: both read
		// in its order (no row of the table is fetched), and the index gets its
		// rows in ascending order, gathered in a large buffer and merged once.
		`INSERT INTO connection_search (connection_id) SELECT id FROM connections INDEXED BY connections_expires ORDER BY expires_at, id`,
		`INSERT INTO connection_search_index (connection_search_index, rank) VALUES ('hashsize', 67108864)`,
		`INSERT INTO connection_search_index (connection_search_index, rank) VALUES ('automerge', 0)`,
		`INSERT INTO connection_search_index (rowid, account_email, account_name, customer_ref, account_id, max_domain)
			SELECT s.id, c.account_email, c.account_name, c.customer_ref, c.account_id, c.max_domain
			FROM connections c INDEXED BY connections_expires CROSS JOIN connection_search s ON s.connection_id = c.id
			ORDER BY c.expires_at, c.id`,
		`INSERT INTO connection_search_index (connection_search_index) VALUES ('optimize')`,
		`INSERT INTO connection_search_index (connection_search_index, rank) VALUES ('automerge', 4)`,
		`INSERT INTO connection_search_index (connection_search_index, rank) VALUES ('hashsize', 1048576)`,
		`CREATE TRIGGER connections_search_insert AFTER INSERT ON connections BEGIN
			INSERT INTO connection_search (connection_id) VALUES (new.id);
			INSERT INTO connection_search_index (rowid, account_email, account_name, customer_ref, account_id, max_domain)
				VALUES (last_insert_rowid(), new.account_email, new.account_name, new.customer_ref, new.account_id, new.max_domain);
		END`,
		`CREATE TRIGGER connections_search_update AFTER UPDATE OF account_email, account_name, customer_ref, account_id, max_domain ON connections
			WHEN old.account_email IS NOT new.account_email OR old.account_name IS NOT new.account_name OR old.customer_ref IS NOT new.customer_ref
				OR old.account_id IS NOT new.account_id OR old.max_domain IS NOT new.max_domain BEGIN
			INSERT OR REPLACE INTO connection_search_index (rowid, account_email, account_name, customer_ref, account_id, max_domain)
				SELECT id, new.account_email, new.account_name, new.customer_ref, new.account_id, new.max_domain
				FROM connection_search WHERE connection_id = new.id;
		END`,
		`CREATE TRIGGER connections_search_delete AFTER DELETE ON connections BEGIN
			DELETE FROM connection_search_index WHERE rowid = (SELECT id FROM connection_search WHERE connection_id = old.id);
			DELETE FROM connection_search WHERE connection_id = old.id;
		END`,
	}},
}
