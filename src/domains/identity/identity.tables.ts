// Tables owned by the identity domain (users, API keys, sessions, refresh tokens, OIDC logins).
// Other domains go through the services.
import { boolean, integer, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const users = pgTable("users", {
  id: uuid("id").primaryKey(),
  username: text("username").notNull(),
  role: text("role").notNull(),
  disabled: boolean("disabled").notNull(),
  createdAt: ts("created_at").notNull(),
  createdBy: text("created_by").notNull(),
  kind: text("kind").notNull().default("human"),
  passwordHash: text("password_hash"),
  mustChangePassword: boolean("must_change_password").notNull().default(false),
  passwordChangedAt: ts("password_changed_at"),
  failedLogins: integer("failed_logins").notNull().default(0),
  lockedUntil: ts("locked_until"),
  lastLoginAt: ts("last_login_at"),
  oidcIssuer: text("oidc_issuer"),
  oidcSubject: text("oidc_subject"),
});

export const apiKeys = pgTable("api_keys", {
  id: uuid("id").primaryKey(),
  prefix: text("prefix").notNull(),
  keyHash: text("key_hash").notNull(),
  name: text("name").notNull(),
  userId: uuid("user_id").notNull(),
  role: text("role").notNull(),
  createdAt: ts("created_at").notNull(),
  createdBy: text("created_by").notNull(),
  expiresAt: ts("expires_at"),
  revokedAt: ts("revoked_at"),
  revokedBy: text("revoked_by"),
  permissions: text("permissions").array(),
  lastUsedAt: ts("last_used_at"),
  lastUsedIp: text("last_used_ip"),
});

export const sessions = pgTable("sessions", {
  id: uuid("id").primaryKey(),
  userId: uuid("user_id").notNull(),
  authMethod: text("auth_method").notNull(),
  createdAt: ts("created_at").notNull(),
  lastSeenAt: ts("last_seen_at").notNull(),
  expiresAt: ts("expires_at").notNull(),
  ip: text("ip"),
  userAgent: text("user_agent"),
  revokedAt: ts("revoked_at"),
  revokedBy: text("revoked_by"),
  revokedReason: text("revoked_reason"),
});

export const refreshTokens = pgTable("refresh_tokens", {
  id: uuid("id").primaryKey(),
  sessionId: uuid("session_id").notNull(),
  tokenHash: text("token_hash").notNull(),
  createdAt: ts("created_at").notNull(),
  expiresAt: ts("expires_at").notNull(),
  rotatedAt: ts("rotated_at"),
});

export const oidcLogins = pgTable("oidc_logins", {
  stateHash: text("state_hash").primaryKey(),
  codeVerifier: text("code_verifier").notNull(),
  nonce: text("nonce").notNull(),
  createdAt: ts("created_at").notNull(),
  expiresAt: ts("expires_at").notNull(),
});
