// Who is calling: the authenticated principal a request carries, and the Actor that services
// receive (principal + request id) so every audit entry names who did what, from which request.
import { PERMISSIONS, type Permission, type Role } from "./permissions.ts";
import { COMMON_ERRORS } from "../../lib/errors.ts";

export type UserPrincipal = {
  kind: "user";
  userId: string;
  username: string;
  role: Role;
  permissions: ReadonlySet<Permission>;
  kindOfUser: "human" | "service";
  /** How the request authenticated: an API key, or an access token of a login session. */
  via: "api_key" | "session";
  /** Set when the request authenticated with an API key. */
  keyId?: string;
  keyPrefix?: string;
  /** Set when the request authenticated with an access token. */
  sessionId?: string;
  /** An admin reset the password: only changing it (and logging out) is allowed until then. */
  mustChangePassword?: boolean;
};

/**
 * The system itself (expiry sweeps, bootstrap, the sentinel), or a machine that authenticated with
 * a credential of its own (a honeypot sensor's key, a bouncer's key, a watcher's token): `machine`
 * is set then, and `permissions` holds only what that machine may do.
 */
export type SystemPrincipal = {
  kind: "system";
  name: string;
  permissions: ReadonlySet<Permission>;
  machine?: { type: MachineType; id: string };
};
export const MACHINE_TYPES = ["sensor", "bouncer", "watcher"] as const;
export type MachineType = (typeof MACHINE_TYPES)[number];

/** The principal of a machine credential (see authPlugin's `credential` route option). */
export const machinePrincipal = (type: MachineType, id: string, name: string, permissions: readonly Permission[]): SystemPrincipal => ({
  kind: "system",
  name,
  permissions: new Set(permissions),
  machine: { type, id },
});

export type Principal = UserPrincipal | SystemPrincipal;

export type Actor = { principal: Principal; requestId: string | null };

export const systemActor = (name: string): Actor => ({
  principal: { kind: "system", name, permissions: new Set(PERMISSIONS) },
  requestId: null,
});

/** Stable identity for audit rows and created_by columns. */
export const actorIdentity = (actor: Actor): { type: string; id: string; name: string } => {
  const p = actor.principal;
  if (p.kind === "system")
    return p.machine ? { type: p.machine.type, id: p.machine.id, name: `${p.machine.type}:${p.name}` } : { type: "system", id: p.name, name: `system:${p.name}` };
  return { type: "user", id: p.userId, name: p.keyPrefix ? `${p.username} (key ${p.keyPrefix})` : p.username };
};

/** Short display name used in created_by / deactivated_by columns. */
export const actorName = (actor: Actor): string =>
  actor.principal.kind === "system"
    ? `${actor.principal.machine?.type ?? "system"}:${actor.principal.name}`
    : actor.principal.username;

export const hasPermission = (principal: Principal, permission: Permission): boolean => principal.permissions.has(permission);

/** First line of every service method: services enforce permissions themselves, not only routes. */
export const requirePermission = (actor: Actor, permission: Permission): void => {
  if (!hasPermission(actor.principal, permission)) {
    const who = actor.principal.kind === "user" ? `role ${actor.principal.role}` : `system:${actor.principal.name}`;
    throw COMMON_ERRORS.FORBIDDEN(`this needs the permission ${permission}, which ${who} does not have`, {
      required_permission: permission,
    });
  }
};
