-- Foundation schema: audit log, minimal identity (users + API keys), security policy, blocklist.

-- Rejects any change to rows of an append-only table. Raised for UPDATE, DELETE and TRUNCATE.
CREATE FUNCTION portcullis_reject_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'PC001';
END
$$;

-- Audit log: one row per state change, written in the same transaction as the change.
-- seq is gap-free from 0 (appenders serialise on an advisory lock), the Merkle log's leaf index.
-- leaf is the entry's RFC 8785 canonical JSON (actor, target, before/after, details...), the exact
-- bytes hashed into the log; the other columns exist to filter on.
CREATE TABLE audit_log (
  seq bigint PRIMARY KEY CHECK (seq >= 0),
  occurred_at timestamptz NOT NULL,
  actor_type text NOT NULL,
  actor_id text NOT NULL,
  actor_name text NOT NULL,
  action text NOT NULL,
  target_type text,
  target_id text,
  request_id text,
  leaf text NOT NULL,
  leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32)
);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION portcullis_reject_mutation();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION portcullis_reject_mutation();

CREATE TABLE users (
  id uuid PRIMARY KEY,
  username text NOT NULL,
  role text NOT NULL CHECK (role IN ('viewer', 'analyst', 'approver', 'executor', 'admin')),
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL,
  created_by text NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (lower(username));

-- API keys: only the SHA-256 of the key is stored; the prefix is what humans and logs see.
CREATE TABLE api_keys (
  id uuid PRIMARY KEY,
  prefix text NOT NULL,
  key_hash text NOT NULL UNIQUE, -- hex SHA-256 of the whole key
  name text NOT NULL,
  user_id uuid NOT NULL REFERENCES users (id),
  role text NOT NULL CHECK (role IN ('viewer', 'analyst', 'approver', 'executor', 'admin')),
  created_at timestamptz NOT NULL,
  created_by text NOT NULL,
  expires_at timestamptz,
  revoked_at timestamptz,
  revoked_by text
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- The deployment's security policy: exactly one row, created with the seed's defaults.
CREATE TABLE security_policy (
  id smallint PRIMARY KEY CHECK (id = 1),
  default_mode text NOT NULL CHECK (default_mode IN ('normal', 'elevated', 'lockdown')),
  auto_elevate boolean NOT NULL,
  auto_lockdown boolean NOT NULL,
  max_failed_auth integer NOT NULL CHECK (max_failed_auth > 0),
  max_scan_events integer NOT NULL CHECK (max_scan_events > 0),
  detection_window_minutes integer NOT NULL CHECK (detection_window_minutes > 0),
  notes text NOT NULL,
  updated_at timestamptz NOT NULL,
  updated_by text NOT NULL
);
INSERT INTO security_policy VALUES (1, 'normal', false, false, 5, 10, 10, 'Default policy', now(), 'system');

CREATE TABLE blocked_entities (
  id uuid PRIMARY KEY,
  entity_type text NOT NULL CHECK (entity_type IN ('ip', 'cidr', 'user', 'api_key')),
  value text NOT NULL,
  reason text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz,
  active boolean NOT NULL DEFAULT true,
  deactivated_at timestamptz,
  deactivated_by text,
  forced boolean NOT NULL DEFAULT false,
  CHECK (active OR deactivated_at IS NOT NULL),
  CHECK (expires_at IS NULL OR expires_at > created_at)
);
-- One active block per (type, value): concurrent creators cannot both win.
CREATE UNIQUE INDEX blocked_entities_one_active ON blocked_entities (entity_type, value) WHERE active;
CREATE INDEX blocked_entities_created ON blocked_entities (created_at DESC, id DESC);
CREATE INDEX blocked_entities_expiry ON blocked_entities (expires_at) WHERE active AND expires_at IS NOT NULL;
