// API key management: create (shown once), list, show, revoke. A key belongs to a user or a
// service account and carries a role or an explicit permission list; nobody can mint a key that
// holds more than they do, and a key never outgrows its owner's current role.
import type { Database, Tx } from "../../db/client.ts";
import { COMMON_ERRORS, defineErrors, validationError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/crypto.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { actorName, requirePermission, type Actor } from "./principal.ts";
import { isPermission, isRole, permissionsOf, type Permission } from "./permissions.ts";
import type { ApiKeyRow, IdentityRepo, UserRow } from "./identity.repo.ts";
import { generateApiKey, keyPermissions, visiblePrefix, type IdentityService } from "./identity.service.ts";

export const KEY_ERRORS = defineErrors({
  API_KEY_NOT_FOUND: { status: 404, title: "API key not found" },
  KEY_EXCEEDS_CREATOR: { status: 403, title: "Key would exceed its creator's permissions" },
  KEY_EXCEEDS_OWNER: { status: 400, title: "Key would exceed its owner's permissions" },
  OWNER_NOT_FOUND: { status: 404, title: "Key owner not found" },
  OWNER_DISABLED: { status: 409, title: "Key owner disabled" },
});

export const keyView = (k: ApiKeyRow, owner: Pick<UserRow, "username" | "role"> | undefined, now: Date) => ({
  id: k.id,
  prefix: k.prefix,
  name: k.name,
  user_id: k.userId,
  owner: owner?.username ?? null,
  role: k.role,
  permissions: k.permissions ?? null,
  effective_permissions: owner ? [...keyPermissions(k, owner)].sort() : [],
  created_at: k.createdAt.toISOString(),
  created_by: k.createdBy,
  expires_at: k.expiresAt?.toISOString() ?? null,
  last_used_at: k.lastUsedAt?.toISOString() ?? null,
  last_used_ip: k.lastUsedIp,
  status: (k.revokedAt ? "revoked" : k.expiresAt && k.expiresAt <= now ? "expired" : "active") as "revoked" | "expired" | "active",
  revoked_at: k.revokedAt?.toISOString() ?? null,
  revoked_by: k.revokedBy,
});

type Deps = { db: Database; repo: IdentityRepo; audit: Pick<AuditService, "append">; clock: Clock; identity: IdentityService; defaultTtlDays: number };

export type CreateKeyInput = {
  name: string;
  role?: string;
  permissions?: string[];
  expires_at?: string | null;
  expires_in_days?: number;
  /** Owner other than the caller (a service account, say): needs keys:manage. */
  user?: string;
};

export const keysService = ({ db, repo, audit, clock, identity, defaultTtlDays }: Deps) => {
  const callerId = (actor: Actor) => {
    if (actor.principal.kind !== "user") throw COMMON_ERRORS.FORBIDDEN("only users own API keys");
    return actor.principal.userId;
  };

  const create = async (actor: Actor, input: CreateKeyInput) => {
    requirePermission(actor, "keys:own");
    const self = callerId(actor);
    const owner = input.user === undefined ? await repo.findUser(self) : await repo.findUser(input.user);
    // Without keys:manage, naming anyone but yourself is refused the same way whether or not that
    // user exists: the answer must not reveal which usernames (or ids) are taken.
    if (!owner || owner.id !== self) requirePermission(actor, "keys:manage");
    if (!owner) throw KEY_ERRORS.OWNER_NOT_FOUND(`no user ${input.user}`);
    if (owner.disabled) throw KEY_ERRORS.OWNER_DISABLED(`${owner.username} is disabled`);
    if (input.role !== undefined && input.permissions !== undefined) throw validationError([{ path: "permissions", message: "give a role or a permission list, not both" }]);
    if (input.expires_at !== undefined && input.expires_in_days !== undefined)
      throw validationError([{ path: "expires_in_days", message: "give expires_at or expires_in_days, not both" }]);
    if (input.role !== undefined && !isRole(input.role)) throw validationError([{ path: "role", message: "must be one of viewer, analyst, approver, executor, admin" }]);
    const unknown = (input.permissions ?? []).map((p, i) => ({ p, i })).filter(({ p }) => !isPermission(p));
    if (unknown.length) throw validationError(unknown.map(({ p, i }) => ({ path: `permissions.${i}`, message: `unknown permission ${JSON.stringify(p).slice(0, 80)}` })));
    const role = input.role ?? owner.role;
    const wanted: Permission[] = input.permissions ? [...new Set(input.permissions as Permission[])].sort() : [...permissionsOf(isRole(role) ? role : "viewer")];
    // Never more than the creator holds (a key minting a key is bounded by its own permissions).
    const beyondCreator = wanted.filter((p) => !actor.principal.permissions.has(p));
    if (beyondCreator.length)
      throw KEY_ERRORS.KEY_EXCEEDS_CREATOR(`you cannot grant what you do not hold: ${beyondCreator.join(", ")}`, { excess_permissions: beyondCreator });
    const ownerPerms = permissionsOf(isRole(owner.role) ? owner.role : "viewer");
    const beyondOwner = wanted.filter((p) => !ownerPerms.has(p));
    if (beyondOwner.length)
      throw KEY_ERRORS.KEY_EXCEEDS_OWNER(`${owner.username} (role ${owner.role}) does not hold: ${beyondOwner.join(", ")}`, { excess_permissions: beyondOwner });
    const now = clock.now();
    let expiresAt: Date | null;
    if (input.expires_at === null) expiresAt = null;
    else if (input.expires_at !== undefined) {
      expiresAt = new Date(input.expires_at);
      if (Number.isNaN(expiresAt.getTime()) || expiresAt <= now) throw validationError([{ path: "expires_at", message: "must be a date-time in the future" }]);
    } else expiresAt = new Date(now.getTime() + (input.expires_in_days ?? defaultTtlDays) * 86_400_000);
    // A key minting a key: the new one never outlives its creator (else a short-lived or soon-revoked
    // key could leave a permanent successor behind). The default lifetime is capped; an explicit
    // longer one is refused.
    if (actor.principal.kind === "user" && actor.principal.via === "api_key" && actor.principal.keyId) {
      const creatorKey = await repo.findKey(actor.principal.keyId);
      const limit = creatorKey?.expiresAt ?? null;
      if (limit && (expiresAt === null || expiresAt > limit)) {
        if (input.expires_at !== undefined || input.expires_in_days !== undefined)
          throw KEY_ERRORS.KEY_EXCEEDS_CREATOR(`a key cannot outlive the key that creates it (${actor.principal.keyPrefix} expires at ${limit.toISOString()})`, {
            creator_expires_at: limit.toISOString(),
          });
        expiresAt = limit;
      }
    }
    const token = generateApiKey();
    const id = uuidv7();
    const row = {
      id,
      prefix: visiblePrefix(token),
      keyHash: sha256Hex(token),
      name: input.name,
      userId: owner.id,
      role,
      permissions: input.permissions ? wanted : null,
      createdAt: now,
      createdBy: actorName(actor),
      expiresAt,
    };
    return db.transaction(async (tx) => {
      await repo.insertApiKey(row, tx);
      await audit.append(tx, actor, {
        action: "identity.api_key.created",
        target: { type: "api_key", id },
        after: { prefix: row.prefix, name: row.name, user_id: owner.id, role, permissions: row.permissions, expires_at: expiresAt?.toISOString() ?? null },
      });
      const stored = (await repo.findKey(id, tx))!;
      return { ...keyView(stored, owner, now), key: token };
    });
  };

  const visible = async (actor: Actor, id: string, tx?: Tx) => {
    requirePermission(actor, "keys:own");
    const key = await repo.findKey(id, tx);
    if (!key) throw KEY_ERRORS.API_KEY_NOT_FOUND(`no API key ${id}`);
    // Somebody else's key is "not found" to a caller who may not manage keys: no probing of ids.
    // (keys:manage first: the system principal, which owns no keys, manages them for the action workflow.)
    if (!actor.principal.permissions.has("keys:manage") && key.userId !== callerId(actor)) throw KEY_ERRORS.API_KEY_NOT_FOUND(`no API key ${id}`);
    return key;
  };

  const list = async (actor: Actor, options: { user?: string; all?: boolean } = {}) => {
    requirePermission(actor, "keys:own");
    let userId: string | undefined = callerId(actor);
    if (options.all || options.user !== undefined) {
      requirePermission(actor, "keys:manage");
      userId = undefined;
      if (options.user !== undefined) {
        const owner = await repo.findUser(options.user);
        if (!owner) throw KEY_ERRORS.OWNER_NOT_FOUND(`no user ${options.user}`);
        userId = owner.id;
      }
    }
    const now = clock.now();
    const owners = new Map((await repo.listUsers()).map((u) => [u.id, u]));
    return (await repo.listKeys(userId)).map((k) => keyView(k, owners.get(k.userId), now));
  };

  const show = async (actor: Actor, id: string) => {
    const key = await visible(actor, id);
    return keyView(key, await repo.findUser(key.userId), clock.now());
  };

  /** `outer`: run inside the caller's transaction (the action workflow). */
  const revoke = async (actor: Actor, id: string, outer?: Tx) => {
    const key = await visible(actor, id, outer);
    const now = clock.now();
    const write = async (tx: Tx) => {
      const revoked = await repo.revokeKey(key.id, now, actorName(actor), tx);
      if (revoked) {
        await audit.append(tx, actor, { action: "identity.api_key.revoked", target: { type: "api_key", id: key.id }, before: { status: "active" }, after: { status: "revoked", prefix: key.prefix } });
        await identity.accessChanged(tx);
      }
      return keyView(revoked ?? key, await repo.findUser(key.userId, tx), now);
    };
    return outer ? write(outer) : db.transaction(write);
  };

  return { create, list, show, revoke };
};
export type KeysService = ReturnType<typeof keysService>;
