// Authentication: turns a bearer credential (an API key or a session's access token) into the
// principal a request runs as, and bootstraps the first admin. Keys are stored as SHA-256 with a
// visible prefix; the secret is shown once. A short cache keeps the database off the hot path;
// changes that must cut access (revoke, disable, role change) clear it here at once and on other
// nodes through the identity change feed.
import { uuidv7 } from "../../lib/ids.ts";
import type { Database, Tx } from "../../db/client.ts";
import { afterCommit } from "../../db/client.ts";
import { defineErrors } from "../../lib/errors.ts";
import { randomToken, sha256Hex } from "../../lib/crypto.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { isPermission, isRole, permissionsOf, type Permission, type Role } from "./permissions.ts";
import { systemActor, type UserPrincipal } from "./principal.ts";
import type { ApiKeyRow, IdentityRepo, UserRow } from "./identity.repo.ts";
import { looksLikeJwt, type AccessTokens } from "./access-tokens.ts";

export const IDENTITY_ERRORS = defineErrors({
  API_KEY_INVALID: { status: 401, title: "API key not recognised" },
  API_KEY_REVOKED: { status: 401, title: "API key revoked" },
  API_KEY_EXPIRED: { status: 401, title: "API key expired" },
  USER_DISABLED: { status: 401, title: "User disabled" },
  SESSION_REVOKED: { status: 401, title: "Session revoked" },
  SESSION_EXPIRED: { status: 401, title: "Session expired" },
});

export const API_KEY_PREFIX = "pc_";
const MIN_TOKEN_LENGTH = 20;
// Last-use bookkeeping is telemetry, not a state change: written at most this often per key.
const TOUCH_INTERVAL_MS = 60_000;

/**
 * What may be shown and logged for a key: for our pc_ keys (32 random bytes) their first 8 characters;
 * for a preset token of unknown strength, a fragment of its hash, so none of the secret is revealed.
 */
// Exactly the shape generateApiKey makes: "pc_" and 32 random bytes in base64url. A preset token that
// merely starts with "pc_" (an operator's choice, e.g. "pc_my-admin-token-...") is not ours to show.
const GENERATED_KEY = /^pc_[A-Za-z0-9_-]{43}$/;
export const visiblePrefix = (token: string): string =>
  GENERATED_KEY.test(token) ? token.slice(0, API_KEY_PREFIX.length + 8) : `sha256:${sha256Hex(token).slice(0, 8)}`;

export const generateApiKey = (): string => `${API_KEY_PREFIX}${randomToken(32)}`;

const roleOf = (value: string): Role => (isRole(value) ? value : "viewer");

/** A key's effective permissions: its own list (or its role's), never more than its owner's role grants now. */
export const keyPermissions = (key: Pick<ApiKeyRow, "permissions" | "role">, owner: Pick<UserRow, "role">): Set<Permission> => {
  const ownerPerms = permissionsOf(roleOf(owner.role));
  const wanted = key.permissions ? key.permissions.filter(isPermission) : [...permissionsOf(roleOf(key.role))];
  return new Set(wanted.filter((p) => ownerPerms.has(p)));
};

/** Publishes "identity changed" to other nodes inside a transaction (PostgreSQL NOTIFY; a no-op on PGlite). */
export type IdentityChangeFeed = { publish(tx: Tx): Promise<void> };

type Deps = {
  db: Database;
  repo: IdentityRepo;
  audit: Pick<AuditService, "append">;
  clock: Clock;
  tokens: AccessTokens;
  changeFeed: IdentityChangeFeed;
  cacheTtlMs?: number;
  log?: { warn(obj: object, msg: string): void };
};

type Cached = { principal: UserPrincipal; validUntil: number; fetchedAt: number };

export const identityService = ({ db, repo, audit, clock, tokens, changeFeed, cacheTtlMs = 5_000, log }: Deps) => {
  const cache = new Map<string, Cached>();
  const MAX_CACHE = 10_000;
  const lastTouched = new Map<string, number>();

  // Bumped by every invalidation: a lookup that read the database before a revocation committed must
  // not put its (now stale) principal back into the cache after the revocation cleared it.
  let generation = 0;
  const remember = (cacheKey: string, principal: UserPrincipal, validUntil: number, nowMs: number, readAt: number) => {
    if (readAt !== generation) return;
    if (cache.size >= MAX_CACHE) cache.clear();
    cache.set(cacheKey, { principal, validUntil, fetchedAt: nowMs });
  };
  const cached = (cacheKey: string, nowMs: number): UserPrincipal | undefined => {
    const hit = cache.get(cacheKey);
    return hit && nowMs - hit.fetchedAt < cacheTtlMs && hit.validUntil > nowMs ? hit.principal : undefined;
  };

  const touchKey = (key: ApiKeyRow, ip: string | null, nowMs: number) => {
    const last = lastTouched.get(key.id) ?? key.lastUsedAt?.getTime() ?? 0;
    if (nowMs - last < TOUCH_INTERVAL_MS) return;
    if (lastTouched.size >= MAX_CACHE) lastTouched.clear();
    lastTouched.set(key.id, nowMs);
    repo.touchKey(key.id, new Date(nowMs), ip).catch((err: unknown) => log?.warn({ err, key: key.prefix }, "recording an API key's last use failed"));
  };

  /**
   * Creates the first admin when there are no users. Returns the credential to print once, or
   * undefined when users already exist (a restart never prints or changes anything).
   */
  const bootstrapAdmin = async (presetToken?: string): Promise<{ username: string; token: string } | undefined> => {
    if (presetToken !== undefined && presetToken.length < MIN_TOKEN_LENGTH)
      throw new Error(`bootstrap admin token must be at least ${MIN_TOKEN_LENGTH} characters`);
    return db.transaction(async (tx) => {
      if ((await repo.countUsers(tx)) > 0) return undefined;
      const now = clock.now();
      const actor = systemActor("bootstrap");
      const userId = uuidv7();
      const keyId = uuidv7();
      const token = presetToken ?? generateApiKey();
      const prefix = visiblePrefix(token);
      await repo.insertUser({ id: userId, username: "admin", role: "admin", disabled: false, createdAt: now, createdBy: "system:bootstrap" }, tx);
      await repo.insertApiKey({ id: keyId, prefix, keyHash: sha256Hex(token), name: "bootstrap admin key", userId, role: "admin", createdAt: now, createdBy: "system:bootstrap" }, tx);
      await audit.append(tx, actor, { action: "identity.user.created", target: { type: "user", id: userId }, after: { username: "admin", role: "admin", kind: "human" } });
      await audit.append(tx, actor, {
        action: "identity.api_key.created",
        target: { type: "api_key", id: keyId },
        after: { prefix, name: "bootstrap admin key", user_id: userId, role: "admin", preset: presetToken !== undefined },
      });
      return { username: "admin", token };
    });
  };

  /** Resolves an API key to its principal, or throws a 401 that says why (by key prefix, never the key). */
  const authenticateApiKey = async (token: string, ip: string | null = null): Promise<UserPrincipal> => {
    const hash = sha256Hex(token);
    const nowMs = clock.now().getTime();
    const hit = cached(hash, nowMs);
    if (hit) return hit;
    const readAt = generation;
    const found = await repo.findKeyByHash(hash);
    if (!found) {
      cache.delete(hash);
      throw IDENTITY_ERRORS.API_KEY_INVALID("the presented API key is not known");
    }
    const { key, user } = found;
    if (key.revokedAt) throw IDENTITY_ERRORS.API_KEY_REVOKED(`API key ${key.prefix} was revoked at ${key.revokedAt.toISOString()}`);
    if (key.expiresAt && key.expiresAt.getTime() <= nowMs) throw IDENTITY_ERRORS.API_KEY_EXPIRED(`API key ${key.prefix} expired at ${key.expiresAt.toISOString()}`);
    if (user.disabled) throw IDENTITY_ERRORS.USER_DISABLED(`the user owning API key ${key.prefix} is disabled`);
    const principal: UserPrincipal = {
      kind: "user",
      kindOfUser: user.kind === "service" ? "service" : "human",
      via: "api_key",
      userId: user.id,
      username: user.username,
      role: roleOf(user.role),
      permissions: keyPermissions(key, user),
      keyId: key.id,
      keyPrefix: key.prefix,
    };
    remember(hash, principal, key.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY, nowMs, readAt);
    touchKey(key, ip, nowMs);
    return principal;
  };

  /** Resolves a session's access token: a valid signature, and a session that is still open. */
  const authenticateAccessToken = async (token: string): Promise<UserPrincipal> => {
    const claims = await tokens.verify(token);
    const nowMs = clock.now().getTime();
    const cacheKey = `session:${claims.sessionId}`;
    const hit = cached(cacheKey, nowMs);
    if (hit && hit.userId === claims.userId) return hit;
    const readAt = generation;
    const found = await repo.findSession(claims.sessionId);
    if (!found || found.user.id !== claims.userId) throw IDENTITY_ERRORS.SESSION_REVOKED("the session of this access token does not exist");
    const { session, user } = found;
    if (session.revokedAt) throw IDENTITY_ERRORS.SESSION_REVOKED(`this session was revoked at ${session.revokedAt.toISOString()} (${session.revokedReason ?? "revoked"})`);
    if (session.expiresAt.getTime() <= nowMs) throw IDENTITY_ERRORS.SESSION_EXPIRED("this session has reached its maximum age; log in again");
    if (user.disabled) throw IDENTITY_ERRORS.USER_DISABLED("this user is disabled");
    const role = roleOf(user.role);
    const principal: UserPrincipal = {
      kind: "user",
      kindOfUser: "human",
      via: "session",
      userId: user.id,
      username: user.username,
      role,
      // The role is read from the database, not the token: a demotion applies within the cache TTL.
      permissions: permissionsOf(role),
      sessionId: session.id,
      mustChangePassword: user.mustChangePassword,
    };
    remember(cacheKey, principal, session.expiresAt.getTime(), nowMs, readAt);
    return principal;
  };

  const authenticate = (token: string, ip: string | null = null): Promise<UserPrincipal> =>
    looksLikeJwt(token) ? authenticateAccessToken(token) : authenticateApiKey(token, ip);

  const invalidateCache = () => {
    generation++;
    cache.clear();
  };

  /** Inside a transaction that cut someone's access: clear caches here after commit and tell other nodes. */
  const accessChanged = async (tx: Tx) => {
    afterCommit(tx, invalidateCache);
    await changeFeed.publish(tx);
  };

  return { bootstrapAdmin, authenticate, authenticateApiKey, authenticateAccessToken, invalidateCache, accessChanged };
};
export type IdentityService = ReturnType<typeof identityService>;
