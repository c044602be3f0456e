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
}
