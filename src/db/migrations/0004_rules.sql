-- Policy-as-code: versioned rule documents with a review lifecycle (DRAFT -> REVIEW -> ACTIVE ->
-- RETIRED, or REJECTED), the decisions made with them (replayable), and the shipped default rule set.

CREATE TABLE rules (
  id uuid PRIMARY KEY,
  name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  version integer NOT NULL CHECK (version >= 1),
  status text NOT NULL CHECK (status IN ('DRAFT', 'REVIEW', 'ACTIVE', 'RETIRED', 'REJECTED')),
  target text NOT NULL CHECK (target IN ('action_request', 'event')),
  -- The rule document with defaults applied; frozen once submitted (trigger below).
  body jsonb NOT NULL,
  author_id text NOT NULL,
  author_name text NOT NULL,
  -- Everyone who edited the draft ("type:id"); none of them may review it.
  contributors jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  submitted_at timestamptz,
  reviewer_id text,
  reviewer_name text,
  review_decision text CHECK (review_decision IN ('approved', 'rejected')),
  review_comment text,
  reviewed_at timestamptz,
  activated_at timestamptz,
  activated_by text,
  retired_at timestamptz,
  retired_by text,
  retire_reason text,
  UNIQUE (name, version),
  CHECK ((review_decision IS NULL) = (reviewer_id IS NULL)),
  -- Four eyes, also at the database: nothing becomes ACTIVE without an approval by someone other than its author.
  CHECK (status NOT IN ('ACTIVE') OR (review_decision = 'approved' AND reviewer_id <> author_id))
);
-- One ACTIVE version per name: concurrent activations cannot both win.
CREATE UNIQUE INDEX rules_one_active ON rules (name) WHERE status = 'ACTIVE';
-- One open draft per name: a second "create" for the name is told to edit the existing draft.
CREATE UNIQUE INDEX rules_one_draft ON rules (name) WHERE status = 'DRAFT';
CREATE INDEX rules_by_status ON rules (status, target);
CREATE INDEX rules_created ON rules (created_at DESC, id DESC);

-- A submitted version is immutable: its body can change only while it is a DRAFT.
CREATE FUNCTION portcullis_rules_freeze_body() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status <> 'DRAFT' AND (NEW.body IS DISTINCT FROM OLD.body OR NEW.name <> OLD.name OR NEW.version <> OLD.version) THEN
    RAISE EXCEPTION 'rule %/% is % and immutable', OLD.name, OLD.version, OLD.status USING ERRCODE = 'PC002';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER rules_freeze_body BEFORE UPDATE ON rules FOR EACH ROW EXECUTE FUNCTION portcullis_rules_freeze_body();
CREATE TRIGGER rules_no_delete BEFORE DELETE ON rules FOR EACH ROW EXECUTE FUNCTION portcullis_reject_mutation();

-- Every recorded decision with its full input and the rule versions it was made with, so it can be
-- replayed against a candidate rule set (simulation). Append-only.
CREATE TABLE rule_decisions (
  id uuid PRIMARY KEY,
  decided_at timestamptz NOT NULL,
  target text NOT NULL CHECK (target IN ('action_request', 'event')),
  subject_type text,
  subject_id text,
  actor_type text NOT NULL,
  actor_id text NOT NULL,
  actor_name text NOT NULL,
  input jsonb NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('ALLOW', 'DRY_RUN_ONLY', 'REQUIRE_APPROVAL', 'DENY')),
  approvals_required integer NOT NULL CHECK (approvals_required >= 0),
  default_applied boolean NOT NULL,
  deciding_rule jsonb,
  matched jsonb NOT NULL,
  shadow_matched jsonb NOT NULL,
  rule_versions jsonb NOT NULL
);
CREATE INDEX rule_decisions_time ON rule_decisions (decided_at, id);
CREATE INDEX rule_decisions_subject ON rule_decisions (subject_type, subject_id);
CREATE TRIGGER rule_decisions_append_only BEFORE UPDATE OR DELETE ON rule_decisions
  FOR EACH ROW EXECUTE FUNCTION portcullis_reject_mutation();
CREATE TRIGGER rule_decisions_no_truncate BEFORE TRUNCATE ON rule_decisions
  FOR EACH STATEMENT EXECUTE FUNCTION portcullis_reject_mutation();

-- The shipped default rule set, ACTIVE from the first start (src/domains/rules/defaults/default-rules.ts;
-- a test checks these rows equal it). Installed here rather than by an audited bootstrap so that every
-- node, and every fresh database, starts with the same set without racing; the author and reviewer
-- columns say where they came from.
INSERT INTO rules (id, name, version, status, target, body, author_id, author_name, contributors, created_at, updated_at,
                   submitted_at, reviewer_id, reviewer_name, review_decision, review_comment, reviewed_at, activated_at, activated_by)
SELECT d.id::uuid, d.name, d.version, d.status, d.target, d.body, 'system:defaults', 'system:defaults', '["system:defaults"]'::jsonb, now(), now(),
       now(), 'system:release-review', 'system:release-review', 'approved',
       'shipped default rule set, reviewed with the source in src/domains/rules/defaults', now(), now(), 'system:defaults'
FROM (VALUES
  ('0193a1f0-0000-7000-8000-000000000001', 'never-block-special-networks', 1, 'ACTIVE', 'action_request',
   $json${"name":"never-block-special-networks","description":"Never block loopback, private, link-local, reserved, unspecified or multicast space, or a configured protected network (blocklist.protectedNetworks). A CIDR is refused when any of its addresses is such space.","target":"action_request","when":{"op":"all","of":[{"op":"eq","field":"action.type","value":"block_entity"},{"op":"any","of":[{"op":"ip_is","field":"entity.ip","classes":["loopback","private","link_local","reserved","unspecified","multicast","protected"]},{"op":"ip_is","field":"entity.cidr","classes":["loopback","private","link_local","reserved","unspecified","multicast","protected"]}]}]},"outcome":"DENY","approvals":null,"priority":1000,"mode":"enforce","tags":["guardrail","default"],"controls":["SOC2-CC6.6","ISO27001-A.8.20"]}$json$::jsonb),
  ('0193a1f0-0000-7000-8000-000000000002', 'broad-cidr-needs-approval', 1, 'ACTIVE', 'action_request',
   $json${"name":"broad-cidr-needs-approval","description":"Blocking a range broader than /24 (IPv4) or /48 (IPv6) needs an approver.","target":"action_request","when":{"op":"all","of":[{"op":"eq","field":"action.type","value":"block_entity"},{"op":"eq","field":"entity.type","value":"cidr"},{"op":"any","of":[{"op":"cidr_prefix_len","field":"entity.cidr","family":4,"cmp":"lt","value":24},{"op":"cidr_prefix_len","field":"entity.cidr","family":6,"cmp":"lt","value":48}]}]},"outcome":"REQUIRE_APPROVAL","approvals":1,"priority":500,"mode":"enforce","tags":["guardrail","default"],"controls":["SOC2-CC8.1"]}$json$::jsonb),
  ('0193a1f0-0000-7000-8000-000000000003', 'lockdown-needs-two-approvers', 1, 'ACTIVE', 'action_request',
   $json${"name":"lockdown-needs-two-approvers","description":"Switching the security mode to lockdown needs two distinct approvers.","target":"action_request","when":{"op":"all","of":[{"op":"eq","field":"action.type","value":"set_mode"},{"op":"eq","field":"action.payload.mode","value":"lockdown"}]},"outcome":"REQUIRE_APPROVAL","approvals":2,"priority":500,"mode":"enforce","tags":["default"],"controls":["SOC2-CC8.1"]}$json$::jsonb),
  ('0193a1f0-0000-7000-8000-000000000004', 'auto-block-honeypot-attackers-when-elevated', 1, 'ACTIVE', 'action_request',
   $json${"name":"auto-block-honeypot-attackers-when-elevated","description":"In elevated or lockdown mode, blocking a single public IP that honeypot evidence names (at least one honeypot hit in the last 24 hours) is allowed without approval.","target":"action_request","when":{"op":"all","of":[{"op":"eq","field":"action.type","value":"block_entity"},{"op":"eq","field":"entity.type","value":"ip"},{"op":"in","field":"policy.mode","values":["elevated","lockdown"]},{"op":"ip_is","field":"entity.ip","classes":["public"]},{"op":"gt","field":"evidence.honeypot_hits_24h","value":0}]},"outcome":"ALLOW","approvals":null,"priority":300,"mode":"enforce","tags":["automation","default"],"controls":[]}$json$::jsonb),
  ('0193a1f0-0000-7000-8000-000000000005', 'unknown-action-types-dry-run', 1, 'ACTIVE', 'action_request',
   $json${"name":"unknown-action-types-dry-run","description":"An action type that no enforced rule names is only dry-run until a rule for it exists.","target":"action_request","when":{"op":"eq","field":"action.type_has_rule","value":false},"outcome":"DRY_RUN_ONLY","approvals":null,"priority":100,"mode":"enforce","tags":["default"],"controls":["SOC2-CC8.1"]}$json$::jsonb),
  ('0193a1f0-0000-7000-8000-000000000006', 'unblock-recent-exploiter-needs-approval', 1, 'ACTIVE', 'action_request',
   $json${"name":"unblock-recent-exploiter-needs-approval","description":"Unblocking an address seen exploiting in the last hour needs an approver.","target":"action_request","when":{"op":"all","of":[{"op":"eq","field":"action.type","value":"unblock_entity"},{"op":"eq","field":"source.exploitation_seen_1h","value":true}]},"outcome":"REQUIRE_APPROVAL","approvals":1,"priority":500,"mode":"enforce","tags":["default"],"controls":["SOC2-CC7.4"]}$json$::jsonb)
) AS d (id, name, version, status, target, body);
