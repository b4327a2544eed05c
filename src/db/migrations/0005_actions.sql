-- The security action workflow: requests with their policy decision, dry-run report and execution
-- result; signed approvals and rejections; a per-request history of transitions; and the webhook
-- outbox (written in the transition's transaction, delivered after commit).

CREATE TABLE action_requests (
  id uuid PRIMARY KEY,
  action_type text NOT NULL CHECK (action_type ~ '^[a-z][a-z0-9_]{0,63}$'),
  payload jsonb NOT NULL,
  -- SHA-256 (hex) of the RFC 8785 canonical JSON of the payload: what approvals sign.
  payload_hash text NOT NULL CHECK (payload_hash ~ '^[0-9a-f]{64}$'),
  reason text NOT NULL DEFAULT '',
  status text NOT NULL CHECK (status IN ('pending', 'approved', 'executed', 'failed', 'rejected', 'cancelled', 'expired', 'dry_run_only')),
  risk text NOT NULL CHECK (risk IN ('low', 'medium', 'high')),
  requested_by text NOT NULL,
  requested_by_type text NOT NULL,
  requested_by_id text NOT NULL,
  decision jsonb NOT NULL,
  decision_outcome text NOT NULL CHECK (decision_outcome IN ('ALLOW', 'REQUIRE_APPROVAL', 'DRY_RUN_ONLY', 'DENY')),
  approvals_required integer NOT NULL CHECK (approvals_required >= 0),
  approvals_count integer NOT NULL DEFAULT 0 CHECK (approvals_count >= 0),
  approved_by text,
  dry_run jsonb,
  dry_run_at timestamptz,
  result jsonb,
  failure_reason text,
  executed_by text,
  closed_by text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  approved_at timestamptz,
  executed_at timestamptz,
  closed_at timestamptz
);
CREATE INDEX action_requests_created ON action_requests (created_at DESC, id DESC);
CREATE INDEX action_requests_status ON action_requests (status, created_at DESC);
-- The expiry sweep's question: pending requests past their time to live.
CREATE INDEX action_requests_pending_expiry ON action_requests (expires_at) WHERE status = 'pending';

CREATE TABLE action_approvals (
  id uuid PRIMARY KEY,
  request_id uuid NOT NULL REFERENCES action_requests (id),
  -- "type:id" of the approver: one verdict per principal and request (N distinct approvers).
  approver_key text NOT NULL,
  approver jsonb NOT NULL,
  verdict text NOT NULL CHECK (verdict IN ('approve', 'reject')),
  note text NOT NULL,
  signed_at timestamptz NOT NULL,
  payload_hash text NOT NULL,
  decision_outcome text NOT NULL,
  key_id text NOT NULL,
  signature text NOT NULL,
  UNIQUE (request_id, approver_key)
);

CREATE TABLE action_history (
  id uuid PRIMARY KEY,
  request_id uuid NOT NULL REFERENCES action_requests (id),
  at timestamptz NOT NULL,
  event text NOT NULL,
  from_status text,
  to_status text NOT NULL,
  actor text NOT NULL,
  note text,
  details jsonb
);
CREATE INDEX action_history_request ON action_history (request_id, at, id);

CREATE TABLE action_webhook_deliveries (
  id uuid PRIMARY KEY,
  request_id uuid NOT NULL REFERENCES action_requests (id),
  event text NOT NULL,
  url text NOT NULL,
  body text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  -- Every attempt: {at, status_code, error, duration_ms}.
  attempt_log jsonb NOT NULL DEFAULT '[]',
  next_attempt_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  delivered_at timestamptz
);
CREATE INDEX action_webhook_deliveries_due ON action_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX action_webhook_deliveries_request ON action_webhook_deliveries (request_id, created_at);
