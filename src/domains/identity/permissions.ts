// Roles as data: the one place that answers "what can an approver do?". Every route names one of
// these permissions (or "public"/"authenticated"); anything not granted here is denied.

export const PERMISSIONS = [
  "policy:read",
  "policy:write",
  "blocklist:read",
  "blocklist:write",
  // Blocking protected or very broad space (loopback, private, /7 ...) needs this on top of write.
  "blocklist:force",
  "blocklist:check",
  "audit:read",
  // Issue a signed checkpoint on demand (they are also issued on a timer).
  "audit:checkpoint",
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** What a route requires: a permission, any authenticated principal, or nothing (health, docs). */
export type RoutePermission = Permission | "authenticated" | "public";

export const ROLES = ["viewer", "analyst", "approver", "executor", "admin"] as const;
export type Role = (typeof ROLES)[number];

const read: Permission[] = ["policy:read", "blocklist:read", "blocklist:check", "audit:read"];

export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  viewer: new Set(read),
  analyst: new Set(read),
  approver: new Set(read),
  executor: new Set(read),
  admin: new Set(PERMISSIONS),
};

export const permissionsOf = (role: Role): ReadonlySet<Permission> => ROLE_PERMISSIONS[role];
