-- Honeypot sensors and their telemetry: the sensor registry with rotating keys, raw events
-- (append-only, deduplicated by a compact key), their triage state kept apart, per-minute rollups
-- that keep the dashboard independent of the event count, and the incidents the sentinel raises.

CREATE TABLE honeypot_instances (
  id uuid PRIMARY KEY,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  honeypot_type text NOT NULL CHECK (honeypot_type ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  location text NOT NULL DEFAULT '',
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL,
  created_by text NOT NULL,
  updated_at timestamptz NOT NULL,
  deactivated_at timestamptz,
  deactivated_by text,
  last_event_at timestamptz,
  CHECK (active OR deactivated_at IS NOT NULL)
);
CREATE UNIQUE INDEX honeypot_instances_name ON honeypot_instances (lower(name));

-- A sensor's keys: only SHA-256 of the key is stored. Rotation adds a key and gives the previous
-- one an expiry (the grace period); a revoked or expired key is refused.
CREATE TABLE honeypot_keys (
  id uuid PRIMARY KEY,
  sensor_id uuid NOT NULL REFERENCES honeypot_instances (id),
  prefix text NOT NULL,
  key_hash bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
  created_at timestamptz NOT NULL,
  created_by text NOT NULL,
  expires_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX honeypot_keys_sensor ON honeypot_keys (sensor_id);

-- Raw events. id orders them (a sequence: cheap appends to the primary key, the cursor for
-- listing). event_key is SHA-256 truncated to 16 bytes of (sensor, event_id) or (sensor, raw
-- bytes): the database refuses a second copy, so retries and parallel senders never duplicate.
-- payload is the normalised event, raw the original as received (credentials removed: they live
-- encrypted in secrets, see docs/decisions/0007).
CREATE TABLE honeypot_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_key bytea NOT NULL CHECK (length(event_key) = 16),
  sensor_id uuid NOT NULL,
  source_ip text NOT NULL,
  event_type text NOT NULL CHECK (event_type IN ('connection', 'auth_attempt', 'exploitation', 'scan', 'command', 'session', 'other')),
  detected_threat text,
  occurred_at timestamptz NOT NULL,
  received_at timestamptz NOT NULL,
  payload jsonb NOT NULL,
  raw text NOT NULL,
  secrets bytea,
  secrets_key_id text,
  CHECK ((secrets IS NULL) = (secrets_key_id IS NULL))
);
CREATE UNIQUE INDEX honeypot_events_key ON honeypot_events (event_key);
CREATE INDEX honeypot_events_source ON honeypot_events (source_ip, id);

-- Events are never edited. Only the retention job deletes, inside a transaction that first wrote
-- its signed summary to the audit log and set portcullis.retention = 'on' locally.
CREATE FUNCTION portcullis_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('portcullis.retention', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'PC001';
END
$$;
CREATE TRIGGER honeypot_events_append_only BEFORE UPDATE OR DELETE ON honeypot_events
  FOR EACH ROW EXECUTE FUNCTION portcullis_events_guard();
CREATE TRIGGER honeypot_events_no_truncate BEFORE TRUNCATE ON honeypot_events
  FOR EACH STATEMENT EXECUTE FUNCTION portcullis_reject_mutation();

-- Triage state, separate so that marking an event processed never touches the event.
CREATE TABLE honeypot_event_state (
  event_id bigint PRIMARY KEY,
  processed_at timestamptz NOT NULL,
  processed_by text NOT NULL
);

-- Per-minute, per-sensor counts written in the ingesting transaction: the dashboard sums at most
-- 24 h of these instead of scanning events.
CREATE TABLE telemetry_rollups (
  bucket timestamptz NOT NULL,
  sensor_id uuid NOT NULL,
  events bigint NOT NULL DEFAULT 0,
  threats bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, sensor_id)
);

-- Detections the sentinel raised for a source (brute force, port scan ...): the dashboard's
-- incidents. One open incident per (source, threat); evidence names the events and counts.
CREATE TABLE incidents (
  id uuid PRIMARY KEY,
  source_ip text NOT NULL,
  threat text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
  status text NOT NULL CHECK (status IN ('open', 'resolved')),
  opened_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  last_event_at timestamptz NOT NULL,
  evidence jsonb NOT NULL,
  action_request_id uuid,
  resolved_at timestamptz,
  resolved_by text
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (source_ip, threat) WHERE status = 'open';
CREATE INDEX incidents_open ON incidents (severity) WHERE status = 'open';
CREATE INDEX incidents_opened ON incidents (opened_at DESC, id DESC);
