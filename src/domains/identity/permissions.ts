// Roles as data: the one place that answers "what can an approver do?". Every route names one of
// these permissions (or "public"/"authenticated"); anything not granted here is denied.
// Machine principals (API keys with an explicit permission list, sensors, bouncers) get subsets.

export const PERMISSIONS = [
  "policy:read",
  "policy:write",
  "blocklist:read",
  "blocklist:write",
  // Blocking protected or very broad space (loopback, private, /7 ...) needs this on top of write.
  "blocklist:force",
  // The enforcement-point question "is this address blocked?" and the plain-text feed.
  "blocklist:check",
  "audit:read",
  // Issue a signed checkpoint on demand (they are also issued on a timer).
  "audit:checkpoint",
  // Users, service accounts, their sessions and lockouts.
  "users:read",
  "users:write",
  // API keys: every user may manage keys of their own (never with more than they hold);
  // managing anybody's keys, including service accounts', is an admin matter.
  "keys:own",
  "keys:manage",
  // Policy-as-code rules: read and simulate; write drafts and activate reviewed ones; review others'.
  "rules:read",
  "rules:write",
  "rules:review",
  "rules:activate",
  // The action workflow: see requests, raise them, approve/reject, execute.
  "actions:read",
  "actions:request",
  "actions:approve",
  "actions:execute",
  // Sensor telemetry: read events and dashboards, triage them, register and manage sensors.
  "events:read",
  "events:triage",
  "sensors:manage",
  // Pushing events as a sensor (machine principals).
  "events:ingest",
  // Seeing captured credentials (honeypot passwords, tokens) decrypted; everyone else sees them masked.
  "telemetry:secrets",
  // Enforcement points (bouncers) and agents (watchers).
  "enforcement:manage",
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** What a route requires: a permission, any authenticated principal, or nothing (health, docs). */
export type RoutePermission = Permission | "authenticated" | "public";

export const ROLES = ["viewer", "analyst", "approver", "executor", "admin"] as const;
export type Role = (typeof ROLES)[number];

// What every role may see. Keys of one's own are part of being a user (scripts, dashboards).
const read: Permission[] = ["policy:read", "blocklist:read", "blocklist:check", "audit:read", "rules:read", "actions:read", "events:read", "keys:own"];

export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  // Reads dashboards and lists.
  viewer: new Set(read),
  // Raises action requests, manages ingestion and triage, writes rules (activation still needs
  // a reviewer other than the author).
  analyst: new Set([...read, "actions:request", "events:triage", "rules:write", "rules:activate"]),
  // Approves or rejects requests (never their own) and reviews rules.
  approver: new Set([...read, "actions:approve", "rules:review"]),
  // Executes approved actions.
  executor: new Set([...read, "actions:execute"]),
  // Users, keys, policy, sensors, config: everything.
  admin: new Set(PERMISSIONS),
};

export const permissionsOf = (role: Role): ReadonlySet<Permission> => ROLE_PERMISSIONS[role];

export const isPermission = (value: string): value is Permission => (PERMISSIONS as readonly string[]).includes(value);
export const isRole = (value: string): value is Role => (ROLES as readonly string[]).includes(value);
