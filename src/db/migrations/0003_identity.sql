-- Identity: local passwords with lockout, service accounts, OIDC-provisioned users, sessions with
-- rotating refresh tokens, API keys with explicit permission lists and last use.

ALTER TABLE users
  ADD COLUMN kind text NOT NULL DEFAULT 'human' CHECK (kind IN ('human', 'service')),
  -- argon2id PHC string; NULL for service accounts, SSO-only users and the bootstrap admin.
  ADD COLUMN password_hash text,
  ADD COLUMN must_change_password boolean NOT NULL DEFAULT false,
  ADD COLUMN password_changed_at timestamptz,
  -- Consecutive failed logins; reset by a success or an admin unlock. Drives the growing lockout.
  ADD COLUMN failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
  ADD COLUMN locked_until timestamptz,
  ADD COLUMN last_login_at timestamptz,
  ADD COLUMN oidc_issuer text,
  ADD COLUMN oidc_subject text,
  ADD CONSTRAINT users_oidc_pair CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL)),
  ADD CONSTRAINT users_service_no_password CHECK (kind = 'human' OR password_hash IS NULL);
CREATE UNIQUE INDEX users_oidc_identity ON users (oidc_issuer, oidc_subject) WHERE oidc_issuer IS NOT NULL;

ALTER TABLE api_keys
  -- An explicit permission list narrower than the role; NULL means the role's permissions.
  -- Either way the key never holds more than its owner's role grants at the time of use.
  ADD COLUMN permissions text[],
  ADD COLUMN last_used_at timestamptz,
  ADD COLUMN last_used_ip text;

-- A login session: the family of refresh tokens issued from one login.
CREATE TABLE sessions (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (id),
  auth_method text NOT NULL CHECK (auth_method IN ('password', 'oidc')),
  created_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  -- Absolute end of the session: refreshing never extends past it.
  expires_at timestamptz NOT NULL,
  ip text,
  user_agent text,
  revoked_at timestamptz,
  revoked_by text,
  revoked_reason text
);
CREATE INDEX sessions_user ON sessions (user_id, created_at DESC);

-- Refresh tokens, stored as SHA-256. A token is used once: refreshing marks it rotated and issues
-- its successor; presenting a rotated token again revokes the whole session (token theft).
CREATE TABLE refresh_tokens (
  id uuid PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES sessions (id),
  token_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  rotated_at timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- In-flight OIDC logins (state -> PKCE verifier and nonce), so any node can take the callback.
CREATE TABLE oidc_logins (
  state_hash text PRIMARY KEY,
  code_verifier text NOT NULL,
  nonce text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
