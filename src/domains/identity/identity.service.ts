// Identity for the foundation: the bootstrap admin and API-key authentication. Keys are stored as
// SHA-256 hashes with a visible prefix; the secret is shown once, at creation. Full user and key
// management (login, OIDC, key minting) builds on this service.
import { uuidv7 } from "../../lib/ids.ts";
import type { Database } from "../../db/client.ts";
import { defineErrors } from "../../lib/errors.ts";
import { randomToken, sha256Hex } from "../../lib/crypto.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { permissionsOf, ROLES, type Role } from "./permissions.ts";
import { systemActor, type UserPrincipal } from "./principal.ts";
import type { IdentityRepo } from "./identity.repo.ts";

export const IDENTITY_ERRORS = defineErrors({
  API_KEY_INVALID: { status: 401, title: "API key not recognised" },
  API_KEY_REVOKED: { status: 401, title: "API key revoked" },
  API_KEY_EXPIRED: { status: 401, title: "API key expired" },
  USER_DISABLED: { status: 401, title: "User disabled" },
});

export const API_KEY_PREFIX = "pc_";
const MIN_TOKEN_LENGTH = 20;

/**
 * What may be shown and logged for a key: for our pc_ keys (32 random bytes) their first 8 characters;
 * for a preset token of unknown strength, a fragment of its hash, so none of the secret is revealed.
 */
export const visiblePrefix = (token: string): string =>
  token.startsWith(API_KEY_PREFIX) && token.length >= 40 ? token.slice(0, API_KEY_PREFIX.length + 8) : `sha256:${sha256Hex(token).slice(0, 8)}`;

export const generateApiKey = (): string => `${API_KEY_PREFIX}${randomToken(32)}`;

type Deps = { db: Database; repo: IdentityRepo; audit: Pick<AuditService, "append">; clock: Clock; cacheTtlMs?: number };

type CachedAuth = { principal: UserPrincipal; keyExpiresAt: number; fetchedAt: number };

export const identityService = ({ db, repo, audit, clock, cacheTtlMs = 5_000 }: Deps) => {
  // Authentication is on every request; a short-lived cache keyed by the key hash keeps the database
  // off the hot path. Revocation is effective on this node at once (invalidate) and elsewhere within the TTL.
  const cache = new Map<string, CachedAuth>();
  const MAX_CACHE = 10_000;

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
      await repo.insertApiKey(
        { id: keyId, prefix, keyHash: sha256Hex(token), name: "bootstrap admin key", userId, role: "admin", createdAt: now, createdBy: "system:bootstrap", expiresAt: null, revokedAt: null, revokedBy: null },
        tx,
      );
      await audit.append(tx, actor, { action: "identity.user.created", target: { type: "user", id: userId }, after: { username: "admin", role: "admin" } });
      await audit.append(tx, actor, {
        action: "identity.api_key.created",
        target: { type: "api_key", id: keyId },
        after: { prefix, name: "bootstrap admin key", user_id: userId, role: "admin", preset: presetToken !== undefined },
      });
      return { username: "admin", token };
    });
  };

  /** Resolves a bearer token to its principal, or throws a 401 that says why (by key prefix, never the key). */
  const authenticateApiKey = async (token: string): Promise<UserPrincipal> => {
    const hash = sha256Hex(token);
    const nowMs = clock.now().getTime();
    const cached = cache.get(hash);
    if (cached && nowMs - cached.fetchedAt < cacheTtlMs && cached.keyExpiresAt > nowMs) return cached.principal;
    const found = await repo.findKeyByHash(hash);
    if (!found) {
      cache.delete(hash);
      throw IDENTITY_ERRORS.API_KEY_INVALID("the presented API key is not known");
    }
    const { key, user } = found;
    if (key.revokedAt) throw IDENTITY_ERRORS.API_KEY_REVOKED(`API key ${key.prefix} was revoked at ${key.revokedAt.toISOString()}`);
    if (key.expiresAt && key.expiresAt.getTime() <= nowMs)
      throw IDENTITY_ERRORS.API_KEY_EXPIRED(`API key ${key.prefix} expired at ${key.expiresAt.toISOString()}`);
    if (user.disabled) throw IDENTITY_ERRORS.USER_DISABLED(`the user owning API key ${key.prefix} is disabled`);
    const role = (ROLES as readonly string[]).includes(key.role) ? (key.role as Role) : "viewer";
    const principal: UserPrincipal = {
      kind: "user",
      userId: user.id,
      username: user.username,
      role,
      permissions: permissionsOf(role),
      keyId: key.id,
      keyPrefix: key.prefix,
    };
    if (cache.size >= MAX_CACHE) cache.clear();
    cache.set(hash, { principal, keyExpiresAt: key.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY, fetchedAt: nowMs });
    return principal;
  };

  const invalidateCache = () => cache.clear();

  return { bootstrapAdmin, authenticateApiKey, invalidateCache };
};
export type IdentityService = ReturnType<typeof identityService>;
