-- The CrowdSec Local API surface: bouncers (decision keys), watchers (agents that log in and push
-- alerts), the alerts they pushed, usage metrics, and crowdsec_decisions: a projection of the IP and
-- CIDR blocks with the integer ids and the change sequence the bouncer protocol needs.

CREATE TABLE crowdsec_bouncers (
  id uuid PRIMARY KEY,
  name text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$'),
  -- SHA-256 (hex) of the key; the key itself is shown once at creation.
  key_hash text NOT NULL UNIQUE CHECK (length(key_hash) = 64),
  key_prefix text NOT NULL,
  created_at timestamptz NOT NULL,
  created_by text NOT NULL,
  -- From the User-Agent "name/version" and the request of the last pull (written in batches).
  agent_name text,
  agent_version text,
  last_pull_at timestamptz,
  last_address text,
  -- The stream cursor: the change sequence and the time this bouncer's last successful pull saw.
  stream_seq bigint,
  stream_at timestamptz
);
CREATE UNIQUE INDEX crowdsec_bouncers_name ON crowdsec_bouncers (lower(name));

CREATE TABLE crowdsec_watchers (
  id uuid PRIMARY KEY,
  machine_id text NOT NULL CHECK (machine_id ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$'),
  password_hash text NOT NULL,
  validated boolean NOT NULL DEFAULT false,
  validated_at timestamptz,
  validated_by text,
  created_at timestamptz NOT NULL,
  registered_from text,
  agent_name text,
  agent_version text,
  scenarios jsonb NOT NULL DEFAULT '[]'::jsonb,
  last_login_at timestamptz,
  last_heartbeat_at timestamptz,
  last_push_at timestamptz,
  last_address text,
  -- Bumped on password change, deletion or re-validation: tokens minted before carry the old value.
  token_version integer NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX crowdsec_watchers_machine_id ON crowdsec_watchers (lower(machine_id));

-- Alerts as pushed, with what Portcullis made of them (events, the block proposal).
CREATE TABLE crowdsec_alerts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  watcher_id uuid NOT NULL,
  machine_id text NOT NULL,
  received_at timestamptz NOT NULL,
  scenario text NOT NULL,
  source_scope text NOT NULL,
  source_value text NOT NULL,
  source_ip text,
  events_count integer NOT NULL,
  start_at text NOT NULL,
  stop_at text NOT NULL,
  simulated boolean NOT NULL,
  alert jsonb NOT NULL,
  event_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
  proposal jsonb
);
CREATE INDEX crowdsec_alerts_source ON crowdsec_alerts (source_value, id);

CREATE TABLE crowdsec_usage_metrics (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  received_at timestamptz NOT NULL,
  machine_type text NOT NULL,
  machine_id text NOT NULL,
  body jsonb NOT NULL
);

-- One row per IP/CIDR block. id is the decision id bouncers see and also the change sequence value
-- of the block's creation; deleted_seq is the sequence value of its end (deactivation or expiry).
-- A bouncer's stream cursor is a sequence value: "new" = id above it, "deleted" = deleted_seq above it.
CREATE SEQUENCE crowdsec_change_seq;
CREATE TABLE crowdsec_decisions (
  id bigint PRIMARY KEY,
  block_id uuid NOT NULL UNIQUE,
  scope text NOT NULL CHECK (scope IN ('Ip', 'Range')),
  value text NOT NULL,
  reason text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz,
  deleted_seq bigint UNIQUE,
  deleted_at timestamptz,
  deleted_by text
);
CREATE INDEX crowdsec_decisions_live_expiry ON crowdsec_decisions (expires_at) WHERE deleted_seq IS NULL;
CREATE INDEX crowdsec_decisions_deleted_at ON crowdsec_decisions (deleted_at) WHERE deleted_seq IS NOT NULL;

-- Sequence values are taken at COMMIT time (a deferred constraint trigger) under an advisory lock
-- held until the commit ends, so values become visible in increasing order: a reader that saw value
-- N will never later see a smaller one appear. Without this, a transaction that drew 5 but
-- committed after another that drew 6 would be skipped by a bouncer whose cursor had moved to 6.
-- The lock is only ever taken last in a transaction (deferred triggers run at commit), after the
-- audit appender's lock that every block change already holds, so it adds no lock-order cycle.
CREATE FUNCTION crowdsec_project_block() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.entity_type NOT IN ('ip', 'cidr') OR (TG_OP = 'UPDATE' AND (NEW.active OR NOT OLD.active)) THEN
    RETURN NULL;
  END IF;
  PERFORM pg_advisory_xact_lock(7310008);
  IF TG_OP = 'INSERT' THEN
    INSERT INTO crowdsec_decisions (id, block_id, scope, value, reason, created_by, created_at, expires_at)
    VALUES (nextval('crowdsec_change_seq'), NEW.id, CASE WHEN NEW.entity_type = 'ip' THEN 'Ip' ELSE 'Range' END,
            NEW.value, NEW.reason, NEW.created_by, NEW.created_at, NEW.expires_at)
    ON CONFLICT (block_id) DO NOTHING;
    IF NEW.active THEN
      RETURN NULL;
    END IF;
  END IF;
  UPDATE crowdsec_decisions
     SET deleted_seq = nextval('crowdsec_change_seq'),
         deleted_at = coalesce(NEW.deactivated_at, now()),
         deleted_by = coalesce(NEW.deactivated_by, 'unknown')
   WHERE block_id = NEW.id AND deleted_seq IS NULL;
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER crowdsec_project_block AFTER INSERT OR UPDATE ON blocked_entities
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION crowdsec_project_block();

-- Blocks that existed before this migration.
INSERT INTO crowdsec_decisions (id, block_id, scope, value, reason, created_by, created_at, expires_at)
SELECT nextval('crowdsec_change_seq'), b.id, CASE WHEN b.entity_type = 'ip' THEN 'Ip' ELSE 'Range' END,
       b.value, b.reason, b.created_by, b.created_at, b.expires_at
  FROM (SELECT * FROM blocked_entities WHERE entity_type IN ('ip', 'cidr') ORDER BY created_at, id) b;
UPDATE crowdsec_decisions d
   SET deleted_seq = s.seq, deleted_at = s.deactivated_at, deleted_by = s.deactivated_by
  FROM (SELECT b.id, nextval('crowdsec_change_seq') AS seq, b.deactivated_at, coalesce(b.deactivated_by, 'unknown') AS deactivated_by
          FROM (SELECT * FROM blocked_entities WHERE entity_type IN ('ip', 'cidr') AND NOT active ORDER BY deactivated_at, id) b) s
 WHERE d.block_id = s.id;
