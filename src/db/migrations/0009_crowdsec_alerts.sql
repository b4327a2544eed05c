-- Idempotent alert pushes: an agent that got no 201 (or a 5xx) resends the same alerts. alert_key is
-- the SHA-256 of the watcher id and the alert's canonical JSON; the unique index makes a resend find
-- the alert it already stored instead of storing it twice. events_stored and completed_at record how
-- far processing got, so a resend after a partial failure resumes where it stopped (the events are
-- not stored twice, the proposal is raised once).
ALTER TABLE crowdsec_alerts ADD COLUMN alert_key text CHECK (alert_key IS NULL OR length(alert_key) = 64);
ALTER TABLE crowdsec_alerts ADD COLUMN events_stored boolean NOT NULL DEFAULT true;
ALTER TABLE crowdsec_alerts ADD COLUMN completed_at timestamptz;
UPDATE crowdsec_alerts SET completed_at = received_at;
CREATE UNIQUE INDEX crowdsec_alerts_key ON crowdsec_alerts (alert_key);
