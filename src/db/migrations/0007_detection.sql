-- Detection and auto-response: an action request may carry the evidence that raised it, and an
-- "open key" that the database keeps unique among open (pending or approved) requests, so the
-- sentinel on any node never raises a second block for a source while one is still open. The
-- incidents the sentinel opens are listed newest first and filtered by source.

ALTER TABLE action_requests ADD COLUMN evidence jsonb;
ALTER TABLE action_requests ADD COLUMN open_key text CHECK (open_key IS NULL OR length(open_key) BETWEEN 1 AND 300);
CREATE UNIQUE INDEX action_requests_one_open ON action_requests (open_key) WHERE open_key IS NOT NULL AND status IN ('pending', 'approved');
-- The dashboard's "pending by type" reads only the pending rows.
CREATE INDEX action_requests_pending_type ON action_requests (action_type) WHERE status = 'pending';

CREATE INDEX incidents_source ON incidents (source_ip, opened_at DESC, id DESC);
