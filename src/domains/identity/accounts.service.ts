// Accounts and sessions: local users and service accounts, password login with lockout, rotating
// refresh tokens, logout and session revocation, admin actions (disable, role, reset, unlock).
// Login failures all look alike to the caller; the audit log records the real reason.
import type { Database, Tx } from "../../db/client.ts";
import { isUniqueViolation } from "../../db/errors.ts";
import { defineErrors, COMMON_ERRORS, validationError } from "../../lib/errors.ts";
import { randomToken, sha256Hex } from "../../lib/crypto.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Clock } from "../../lib/time.ts";
import type { Config } from "../../config/index.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { actorName, requirePermission, systemActor, type Actor } from "./principal.ts";
import { isRole, permissionsOf, type Role } from "./permissions.ts";
import type { IdentityRepo, SessionRow, UserRow } from "./identity.repo.ts";
import type { IdentityService } from "./identity.service.ts";
import type { AccessTokens } from "./access-tokens.ts";
import { MAX_PASSWORD_LENGTH, passwordProblem, type PasswordHasher } from "./passwords.ts";

export const ACCOUNT_ERRORS = defineErrors({
  INVALID_CREDENTIALS: { status: 401, title: "Login failed" },
  REFRESH_TOKEN_INVALID: { status: 401, title: "Refresh token not recognised" },
  REFRESH_TOKEN_EXPIRED: { status: 401, title: "Refresh token expired" },
  REFRESH_TOKEN_REUSED: { status: 401, title: "Refresh token reused" },
  USER_NOT_FOUND: { status: 404, title: "User not found" },
  SESSION_NOT_FOUND: { status: 404, title: "Session not found" },
  USER_EXISTS: { status: 409, title: "Username taken" },
  PASSWORD_REJECTED: { status: 400, title: "Password does not meet the policy" },
  PASSWORD_CHANGE_REQUIRED: { status: 403, title: "Password change required" },
  NOT_A_PASSWORD_ACCOUNT: { status: 400, title: "Not a password account" },
  SELF_LOCKOUT: { status: 409, title: "Would lock out the last admin" },
});

export const REFRESH_TOKEN_PREFIX = "pcr_";
const USERNAME_FORM = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const UUID_FORM = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// A name shaped like a UUID would be shadowed by the user id lookup (/users/{user} takes either).
const USERNAME = { test: (name: string) => USERNAME_FORM.test(name) && !UUID_FORM.test(name) };
const LOGIN_FAILED = "invalid username or password, or the account is locked or disabled (after repeated failures an account locks for a growing period)";

export type ClientInfo = { ip: string | null; userAgent: string | null };
export type IssuedTokens = {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  session_id: string;
  password_change_required: boolean;
};

export const userView = (u: UserRow, now: Date) => ({
  id: u.id,
  username: u.username,
  role: u.role,
  kind: u.kind,
  disabled: u.disabled,
  auth: u.oidcIssuer ? "oidc" : u.passwordHash ? "password" : u.kind === "service" ? "api_key" : "none",
  must_change_password: u.mustChangePassword,
  locked_until: u.lockedUntil && u.lockedUntil > now ? u.lockedUntil.toISOString() : null,
  failed_logins: u.failedLogins,
  last_login_at: u.lastLoginAt?.toISOString() ?? null,
  created_at: u.createdAt.toISOString(),
  created_by: u.createdBy,
});
export type UserView = ReturnType<typeof userView>;

export const sessionView = (s: SessionRow, now: Date, currentSessionId?: string) => ({
  id: s.id,
  user_id: s.userId,
  auth_method: s.authMethod,
  created_at: s.createdAt.toISOString(),
  last_seen_at: s.lastSeenAt.toISOString(),
  expires_at: s.expiresAt.toISOString(),
  ip: s.ip,
  user_agent: s.userAgent,
  active: !s.revokedAt && s.expiresAt > now,
  revoked_at: s.revokedAt?.toISOString() ?? null,
  revoked_reason: s.revokedReason,
  current: s.id === currentSessionId,
});

type Deps = {
  db: Database;
  repo: IdentityRepo;
  audit: Pick<AuditService, "append">;
  clock: Clock;
  config: Config;
  identity: IdentityService;
  tokens: AccessTokens;
  passwords: PasswordHasher;
};

export const accountsService = ({ db, repo, audit, clock, config, identity, tokens, passwords }: Deps) => {
  const auth = config.auth;
  const settings = { minLength: auth.passwordMinLength };

  const checkPassword = (password: string, username: string, field = "password") => {
    const problem = passwordProblem(password, settings, username);
    if (problem) throw ACCOUNT_ERRORS.PASSWORD_REJECTED(`${field} ${problem}`, { errors: [{ path: field, message: problem }] });
  };

  const getUser = async (ref: string, tx?: Tx, forUpdate = false): Promise<UserRow> => {
    const user = await repo.findUser(ref, tx, forUpdate);
    if (!user) throw ACCOUNT_ERRORS.USER_NOT_FOUND(`no user ${ref}`);
    return user;
  };

  // ------------------------------------------------------------------ sessions

  /** Opens a session for `user` inside `tx` and returns its first token pair. */
  const startSession = async (tx: Tx, user: UserRow, method: "password" | "oidc", client: ClientInfo): Promise<IssuedTokens> => {
    const now = clock.now();
    const sessionId = uuidv7();
    const expiresAt = new Date(now.getTime() + auth.sessionMaxAgeSeconds * 1000);
    await repo.insertSession(
      { id: sessionId, userId: user.id, authMethod: method, createdAt: now, lastSeenAt: now, expiresAt, ip: client.ip, userAgent: client.userAgent?.slice(0, 256) ?? null },
      tx,
    );
    return issuePair(tx, user, sessionId, expiresAt);
  };

  const issuePair = async (tx: Tx, user: UserRow, sessionId: string, sessionExpiresAt: Date): Promise<IssuedTokens> => {
    const now = clock.now();
    const refresh = `${REFRESH_TOKEN_PREFIX}${randomToken(32)}`;
    const refreshExpires = new Date(Math.min(now.getTime() + auth.refreshTokenTtlSeconds * 1000, sessionExpiresAt.getTime()));
    await repo.insertRefreshToken({ id: uuidv7(), sessionId, tokenHash: sha256Hex(refresh), createdAt: now, expiresAt: refreshExpires }, tx);
    const access = await tokens.issue({ userId: user.id, sessionId, role: user.role });
    return {
      access_token: access.token,
      token_type: "Bearer",
      expires_in: tokens.ttlSeconds,
      refresh_token: refresh,
      refresh_expires_in: Math.max(0, Math.floor((refreshExpires.getTime() - now.getTime()) / 1000)),
      session_id: sessionId,
      password_change_required: user.mustChangePassword,
    };
  };

  /** One more consecutive password failure (login or password change), locking the account past the threshold. */
  /**
   * Admits one password attempt for a user, or refuses it while the account is locked. Every admitted
   * attempt counts as a failure until it proves right, and the lock is set the moment the count reaches
   * the threshold (each attempt past it doubles the lock, up to the cap). Counting before verifying,
   * under a row lock, means parallel guesses cannot all be checked against the hash before the lock
   * lands: at most the threshold's worth are admitted.
   */
  const admitAttempt = async (userId: string, now: Date) =>
    db.transaction(async (tx) => {
      const row = await repo.findUser(userId, tx, true);
      if (!row) throw ACCOUNT_ERRORS.USER_NOT_FOUND(`no user ${userId}`);
      if (row.lockedUntil && row.lockedUntil > now) return { admitted: false as const, lockedUntil: row.lockedUntil };
      const failures = row.failedLogins + 1;
      const seconds = Math.min(auth.lockoutMaxSeconds, auth.lockoutBaseSeconds * 2 ** Math.min(30, Math.max(0, failures - auth.lockoutThreshold)));
      const lockedUntil = failures >= auth.lockoutThreshold ? new Date(now.getTime() + seconds * 1000) : null;
      await repo.updateUser(userId, { failedLogins: failures, lockedUntil }, tx);
      return { admitted: true as const, failures, lockedUntil, lockSeconds: seconds };
    });

  /** The audit trail of an admitted attempt that turned out wrong (the count was taken on admission). */
  const recordBadPassword = async (actor: Actor, user: UserRow, attempt: { failures: number; lockedUntil: Date | null; lockSeconds: number }, reason: string, ip: string | null) => {
    await db.transaction(async (tx) => {
      await audit.append(tx, actor, { action: "identity.login.failed", target: { type: "user", id: user.id }, details: { reason, ip, consecutive_failures: attempt.failures } });
      if (attempt.lockedUntil)
        await audit.append(tx, actor, {
          action: "identity.user.locked",
          target: { type: "user", id: user.id },
          details: { consecutive_failures: attempt.failures, locked_until: attempt.lockedUntil.toISOString(), lock_seconds: attempt.lockSeconds, ip },
        });
    });
  };

  const login = async (input: { username: string; password: string }, client: ClientInfo): Promise<IssuedTokens> => {
    const { username, password } = input;
    const actor = systemActor("login");
    const fail = async (reason: string, user: UserRow | undefined, extra: Record<string, unknown> = {}) => {
      await db.transaction(async (tx) => {
        await audit.append(tx, actor, {
          action: "identity.login.failed",
          target: user ? { type: "user", id: user.id } : { type: "username", id: username.slice(0, 64) },
          details: { reason, ip: client.ip, ...extra },
        });
      });
      throw ACCOUNT_ERRORS.INVALID_CREDENTIALS(LOGIN_FAILED);
    };
    const user = await repo.findUserByUsername(username);
    const now = clock.now();
    if (!user || user.kind !== "human" || !user.passwordHash) {
      await passwords.burn(password);
      return fail(user ? "no_password" : "unknown_user", user);
    }
    if (user.disabled) {
      await passwords.burn(password);
      return fail("disabled", user);
    }
    const attempt = await admitAttempt(user.id, now);
    if (!attempt.admitted) {
      await passwords.burn(password);
      return fail("locked", user, { locked_until: attempt.lockedUntil.toISOString() });
    }
    const ok = await passwords.verify(user.passwordHash, password);
    if (!ok) {
      await recordBadPassword(actor, user, attempt, "bad_password", client.ip);
      throw ACCOUNT_ERRORS.INVALID_CREDENTIALS(LOGIN_FAILED);
    }
    return db.transaction(async (tx) => {
      const fresh = (await repo.updateUser(user.id, { failedLogins: 0, lockedUntil: null, lastLoginAt: now }, tx))!;
      const issued = await startSession(tx, fresh, "password", client);
      await audit.append(tx, actor, {
        action: "identity.login.succeeded",
        target: { type: "user", id: user.id },
        details: { method: "password", session_id: issued.session_id, ip: client.ip, password_change_required: fresh.mustChangePassword },
      });
      return issued;
    });
  };

  const refresh = async (token: string, client: ClientInfo): Promise<IssuedTokens> => {
    const actor = systemActor("refresh");
    const row = token.startsWith(REFRESH_TOKEN_PREFIX) && token.length <= 128 ? await repo.findRefreshToken(sha256Hex(token)) : undefined;
    if (!row) throw ACCOUNT_ERRORS.REFRESH_TOKEN_INVALID("the refresh token is not known");
    const now = clock.now();
    const found = await repo.findSession(row.sessionId);
    if (!found) throw ACCOUNT_ERRORS.REFRESH_TOKEN_INVALID("the refresh token is not known");
    const { session, user } = found;
    const reuse = async () => {
      // A rotated token presented again: either the client replayed it, or someone stole it. Either
      // way the family is no longer trustworthy; end the session for everyone holding its tokens.
      await db.transaction(async (tx) => {
        const revoked = await repo.revokeSessions({ sessionId: session.id }, now, "system:refresh", "refresh_token_reuse", tx);
        await audit.append(tx, actor, {
          action: "identity.session.refresh_reused",
          target: { type: "session", id: session.id },
          details: { suspicious: true, user_id: user.id, ip: client.ip, rotated_at: row.rotatedAt?.toISOString() ?? now.toISOString(), session_revoked: revoked.length > 0 },
        });
        await identity.accessChanged(tx);
      });
      throw ACCOUNT_ERRORS.REFRESH_TOKEN_REUSED("this refresh token was already used; the session has been revoked as a precaution, log in again");
    };
    if (row.rotatedAt) return reuse();
    if (session.revokedAt) throw ACCOUNT_ERRORS.REFRESH_TOKEN_INVALID(`the session was revoked at ${session.revokedAt.toISOString()}`);
    if (row.expiresAt <= now || session.expiresAt <= now) throw ACCOUNT_ERRORS.REFRESH_TOKEN_EXPIRED("the refresh token has expired; log in again");
    if (user.disabled) throw ACCOUNT_ERRORS.REFRESH_TOKEN_INVALID("the user is disabled");
    let reused = false;
    const issued = await db.transaction(async (tx) => {
      if (!(await repo.rotateRefreshToken(row.id, now, tx))) {
        reused = true;
        return undefined;
      }
      await repo.touchSession(session.id, now, client.ip, tx);
      const pair = await issuePair(tx, user, session.id, session.expiresAt);
      await audit.append(tx, actor, { action: "identity.session.refreshed", target: { type: "session", id: session.id }, details: { user_id: user.id, ip: client.ip } });
      return pair;
    });
    if (reused || !issued) return reuse();
    return issued;
  };

  /** Ends the caller's session (access token) or the session of the given refresh token. */
  const logout = async (actor: Actor | undefined, refreshToken: string | undefined): Promise<{ revoked: number }> => {
    let sessionId: string | undefined;
    if (actor?.principal.kind === "user" && actor.principal.sessionId) sessionId = actor.principal.sessionId;
    else if (refreshToken) {
      const row = refreshToken.startsWith(REFRESH_TOKEN_PREFIX) && refreshToken.length <= 128 ? await repo.findRefreshToken(sha256Hex(refreshToken)) : undefined;
      if (!row) throw ACCOUNT_ERRORS.REFRESH_TOKEN_INVALID("the refresh token is not known");
      sessionId = row.sessionId;
    }
    if (!sessionId) throw validationError([{ path: "refresh_token", message: "an API key has no session: send the session's refresh_token, or revoke the key instead" }]);
    const who = actor ?? systemActor("logout");
    return db.transaction(async (tx) => {
      const revoked = await repo.revokeSessions({ sessionId }, clock.now(), actorName(who), "logout", tx);
      if (revoked.length) {
        await audit.append(tx, who, { action: "identity.session.logout", target: { type: "session", id: sessionId } });
        await identity.accessChanged(tx);
      }
      return { revoked: revoked.length };
    });
  };

  const ownUserId = (actor: Actor): string => {
    if (actor.principal.kind !== "user") throw COMMON_ERRORS.FORBIDDEN("only users have sessions");
    return actor.principal.userId;
  };

  const listSessions = async (actor: Actor, userRef?: string, includeEnded = false) => {
    const now = clock.now();
    let userId = ownUserId(actor);
    if (userRef !== undefined) {
      requirePermission(actor, "users:read");
      userId = (await getUser(userRef)).id;
    }
    const current = actor.principal.kind === "user" ? actor.principal.sessionId : undefined;
    return (await repo.listSessions(userId, includeEnded ? undefined : now)).map((s) => sessionView(s, now, current));
  };

  /** Revokes one session: your own, or anybody's with users:write. */
  const revokeSession = async (actor: Actor, sessionId: string) => {
    const found = await repo.findSession(sessionId);
    if (!found) throw ACCOUNT_ERRORS.SESSION_NOT_FOUND(`no session ${sessionId}`);
    if (found.user.id !== ownUserId(actor)) requirePermission(actor, "users:write");
    return db.transaction(async (tx) => {
      const revoked = await repo.revokeSessions({ sessionId }, clock.now(), actorName(actor), "revoked", tx);
      if (revoked.length) {
        await audit.append(tx, actor, { action: "identity.session.revoked", target: { type: "session", id: sessionId }, details: { user_id: found.user.id } });
        await identity.accessChanged(tx);
      }
      return { revoked: revoked.length };
    });
  };

  /** Revokes all of a user's open sessions (your own unless `userRef`, optionally keeping the current one). */
  const revokeAllSessions = async (actor: Actor, options: { userRef?: string; exceptCurrent?: boolean }) => {
    let userId = ownUserId(actor);
    if (options.userRef !== undefined) {
      requirePermission(actor, "users:write");
      userId = (await getUser(options.userRef)).id;
    }
    const current = actor.principal.kind === "user" ? actor.principal.sessionId : undefined;
    return db.transaction(async (tx) => {
      const revoked = await repo.revokeSessions(
        { userId, ...(options.exceptCurrent && current ? { exceptSessionId: current } : {}) },
        clock.now(),
        actorName(actor),
        "revoked_all",
        tx,
      );
      if (revoked.length) {
        await audit.append(tx, actor, { action: "identity.session.revoked_all", target: { type: "user", id: userId }, details: { sessions: revoked } });
        await identity.accessChanged(tx);
      }
      return { revoked: revoked.length };
    });
  };

  // ------------------------------------------------------------------ users

  const assertRole = (role: string, field = "role"): Role => {
    if (!isRole(role)) throw validationError([{ path: field, message: "must be one of viewer, analyst, approver, executor, admin" }]);
    return role;
  };

  /** Admin: a human user (with a password or a generated temporary one) or a service account (keys only). */
  const createUser = async (actor: Actor, input: { username: string; role: string; kind?: "human" | "service"; password?: string }) => {
    requirePermission(actor, "users:write");
    const role = assertRole(input.role);
    if (!USERNAME.test(input.username)) throw validationError([{ path: "username", message: "1-64 characters: letters, digits and . _ @ -, starting with a letter or digit, and not shaped like a UUID" }]);
    const kind = input.kind ?? "human";
    if (kind === "service" && input.password !== undefined) throw validationError([{ path: "password", message: "service accounts authenticate with API keys only" }]);
    let temporaryPassword: string | undefined;
    let hash: string | null = null;
    if (kind === "human") {
      if (input.password !== undefined) checkPassword(input.password, input.username);
      else temporaryPassword = randomToken(15);
      hash = await passwords.hash(input.password ?? temporaryPassword!);
    }
    const now = clock.now();
    return db.transaction(async (tx) => {
      if (await repo.findUser(input.username, tx)) throw ACCOUNT_ERRORS.USER_EXISTS(`a user named ${input.username} already exists`);
      const id = uuidv7();
      try {
        await repo.insertUser(
          { id, username: input.username, role, kind, disabled: false, createdAt: now, createdBy: actorName(actor), passwordHash: hash, mustChangePassword: temporaryPassword !== undefined, passwordChangedAt: hash ? now : null },
          tx,
        );
      } catch (error) {
        throw isUniqueViolation(error) ? ACCOUNT_ERRORS.USER_EXISTS(`a user named ${input.username} already exists`) : error;
      }
      await audit.append(tx, actor, { action: "identity.user.created", target: { type: "user", id }, after: { username: input.username, role, kind, temporary_password: temporaryPassword !== undefined } });
      const user = (await repo.findUser(id, tx))!;
      return { user: userView(user, now), ...(temporaryPassword ? { temporary_password: temporaryPassword } : {}) };
    });
  };

  const listUsers = async (actor: Actor) => {
    requirePermission(actor, "users:read");
    const now = clock.now();
    return (await repo.listUsers()).map((u) => userView(u, now));
  };

  const showUser = async (actor: Actor, ref: string) => {
    requirePermission(actor, "users:read");
    return userView(await getUser(ref), clock.now());
  };

  /** A state change on a user, its audit entry and cache invalidation, in one transaction. */
  const changeUser = async (
    actor: Actor,
    ref: string,
    action: string,
    patch: (user: UserRow) => Partial<UserRow> | undefined,
    options: { revokeSessions?: string; guardLastAdmin?: boolean; tx?: Tx } = {},
  ) => {
    requirePermission(actor, "users:write");
    const now = clock.now();
    const write = async (tx: Tx) => {
      // Two admins disabled at once must not both see the other still enabled: lock all enabled
      // admins first (before the target row, in one order) and count them under that lock.
      const admins = options.guardLastAdmin ? await repo.lockActiveAdmins(tx) : [];
      const user = await getUser(ref, tx, true);
      const changes = patch(user);
      if (!changes) return userView(user, now);
      if (options.guardLastAdmin && user.role === "admin" && !user.disabled && admins.length <= 1)
        throw ACCOUNT_ERRORS.SELF_LOCKOUT(`${user.username} is the last enabled admin; create or enable another admin first`);
      const updated = (await repo.updateUser(user.id, changes, tx))!;
      const before: Record<string, unknown> = {};
      const after: Record<string, unknown> = {};
      for (const key of Object.keys(changes) as (keyof UserRow)[]) {
        if (key === "passwordHash") continue;
        before[key] = user[key] instanceof Date ? (user[key] as Date).toISOString() : user[key];
        after[key] = updated[key] instanceof Date ? (updated[key] as Date).toISOString() : updated[key];
      }
      if (changes.passwordHash !== undefined) after.password_changed = true;
      await audit.append(tx, actor, { action, target: { type: "user", id: user.id }, before, after });
      if (options.revokeSessions) await repo.revokeSessions({ userId: user.id }, now, actorName(actor), options.revokeSessions, tx);
      await identity.accessChanged(tx);
      return userView(updated, now);
    };
    return options.tx ? write(options.tx) : db.transaction(write);
  };

  /** `tx`: run inside the caller's transaction (the action workflow). */
  const setDisabled = (actor: Actor, ref: string, disabled: boolean, tx?: Tx) =>
    changeUser(actor, ref, disabled ? "identity.user.disabled" : "identity.user.enabled", (u) => (u.disabled === disabled ? undefined : { disabled }), {
      ...(disabled ? { revokeSessions: "user_disabled", guardLastAdmin: true } : {}),
      ...(tx ? { tx } : {}),
    });

  const setRole = (actor: Actor, ref: string, role: string) => {
    const wanted = assertRole(role);
    return changeUser(actor, ref, "identity.user.role_changed", (u) => (u.role === wanted ? undefined : { role: wanted }), { guardLastAdmin: wanted !== "admin" });
  };

  const unlock = (actor: Actor, ref: string) =>
    changeUser(actor, ref, "identity.user.unlocked", (u) => (u.failedLogins === 0 && !u.lockedUntil ? undefined : { failedLogins: 0, lockedUntil: null }));

  /** Admin reset: a new password (given, or generated and returned once) that must be changed at next login. */
  const resetPassword = async (actor: Actor, ref: string, password?: string) => {
    requirePermission(actor, "users:write");
    const user = await getUser(ref);
    if (user.kind !== "human") throw ACCOUNT_ERRORS.NOT_A_PASSWORD_ACCOUNT(`${user.username} is a service account; it authenticates with API keys`);
    if (password !== undefined) checkPassword(password, user.username);
    const temporary = password ?? randomToken(15);
    const hash = await passwords.hash(temporary);
    const view = await changeUser(
      actor,
      user.id,
      "identity.user.password_reset",
      () => ({ passwordHash: hash, mustChangePassword: true, passwordChangedAt: clock.now(), failedLogins: 0, lockedUntil: null }),
      { revokeSessions: "password_reset" },
    );
    return { user: view, ...(password === undefined ? { temporary_password: temporary } : {}) };
  };

  /** The caller changes their own password (the current one is required once one exists). */
  const changePassword = async (actor: Actor, input: { current_password?: string; new_password: string }) => {
    const userId = ownUserId(actor);
    const user = await getUser(userId);
    if (user.kind !== "human") throw ACCOUNT_ERRORS.NOT_A_PASSWORD_ACCOUNT("service accounts authenticate with API keys");
    if (user.oidcIssuer) throw ACCOUNT_ERRORS.NOT_A_PASSWORD_ACCOUNT("this account signs in through single sign-on; change the password at the identity provider");
    // The new password's own rules first: a refusal there must not count as a failed attempt.
    checkPassword(input.new_password, user.username, "new_password");
    if (user.passwordHash) {
      if (input.current_password === undefined) throw validationError([{ path: "current_password", message: "required" }]);
      // Guessing the current password through a stolen session counts towards the same lockout as logins.
      const wrong = () => ACCOUNT_ERRORS.INVALID_CREDENTIALS("the current password is wrong, or the account is locked after repeated failures", { errors: [{ path: "current_password", message: "wrong password" }] });
      const attempt = await admitAttempt(user.id, clock.now());
      if (!attempt.admitted) {
        await passwords.burn(input.current_password);
        throw wrong();
      }
      if (input.current_password.length > MAX_PASSWORD_LENGTH || !(await passwords.verify(user.passwordHash, input.current_password))) {
        await recordBadPassword(actor, user, attempt, "bad_current_password", null);
        throw wrong();
      }
      // Proven right: the admitted attempt no longer counts.
      await repo.updateUser(user.id, { failedLogins: 0, lockedUntil: null });
    }
    if (user.passwordHash && (await passwords.verify(user.passwordHash, input.new_password)))
      throw ACCOUNT_ERRORS.PASSWORD_REJECTED("new_password must differ from the current one", { errors: [{ path: "new_password", message: "same as the current password" }] });
    const hash = await passwords.hash(input.new_password);
    const now = clock.now();
    const current = actor.principal.kind === "user" ? actor.principal.sessionId : undefined;
    return db.transaction(async (tx) => {
      await repo.updateUser(user.id, { passwordHash: hash, mustChangePassword: false, passwordChangedAt: now, failedLogins: 0, lockedUntil: null }, tx);
      // Other sessions may belong to whoever knew the old password.
      const revoked = await repo.revokeSessions({ userId: user.id, ...(current ? { exceptSessionId: current } : {}) }, now, actorName(actor), "password_changed", tx);
      await audit.append(tx, actor, { action: "identity.user.password_changed", target: { type: "user", id: user.id }, details: { other_sessions_revoked: revoked.length } });
      await identity.accessChanged(tx);
      return { changed: true, other_sessions_revoked: revoked.length };
    });
  };

  /** Finds or provisions the user an OIDC login names; the mapped role is re-applied on each login. */
  const provisionOidcUser = async (tx: Tx, input: { issuer: string; subject: string; username: string; role: Role }) => {
    const actor = systemActor("oidc");
    const now = clock.now();
    const existing = await repo.findUserByOidc(input.issuer, input.subject, tx);
    if (existing) {
      if (existing.role !== input.role) {
        await repo.updateUser(existing.id, { role: input.role }, tx);
        await audit.append(tx, actor, { action: "identity.user.role_changed", target: { type: "user", id: existing.id }, before: { role: existing.role }, after: { role: input.role }, details: { source: "oidc_claims" } });
        await identity.accessChanged(tx);
      }
      return (await repo.findUser(existing.id, tx))!;
    }
    // A local account with the same name is never taken over by an SSO identity.
    let username = input.username;
    if (!USERNAME.test(username) || (await repo.findUser(username, tx))) username = `sso-${sha256Hex(`${input.issuer} ${input.subject}`).slice(0, 12)}`;
    const id = uuidv7();
    await repo.insertUser({ id, username, role: input.role, kind: "human", disabled: false, createdAt: now, createdBy: "system:oidc", oidcIssuer: input.issuer, oidcSubject: input.subject }, tx);
    await audit.append(tx, actor, { action: "identity.user.provisioned", target: { type: "user", id }, after: { username, role: input.role, issuer: input.issuer, subject: input.subject } });
    return (await repo.findUser(id, tx))!;
  };

  const permissionsFor = (role: Role) => [...permissionsOf(role)];

  return {
    login,
    refresh,
    logout,
    startSession,
    listSessions,
    revokeSession,
    revokeAllSessions,
    createUser,
    listUsers,
    showUser,
    setDisabled,
    setRole,
    unlock,
    resetPassword,
    changePassword,
    provisionOidcUser,
    permissionsFor,
  };
};
export type AccountsService = ReturnType<typeof accountsService>;
