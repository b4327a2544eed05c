// The authorisation matrix: one table says, for every route, which principals may call it; the
// test calls every route as every principal and asserts exactly the table. Allowed means the
// answer is neither 401 nor 403 (bad dummy input may still give 400/404); denied means 403
// FORBIDDEN for an authenticated principal and 401 UNAUTHENTICATED for an anonymous one.
// A route without a row, or a row without a route, fails the test: new routes must be placed here.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";

const ROLES = ["viewer", "analyst", "approver", "executor", "admin"] as const;
// Principals: anonymous, one API key per role, an analyst logged in with a password (the access
// token path), and a machine principal: a service account's key limited to blocklist:check (what
// an enforcement point holds).
const PRINCIPALS = ["anonymous", ...ROLES, "analyst-session", "enforcer"] as const;
type Principal = (typeof PRINCIPALS)[number];

/** `{ machine }`: only that machine credential (sensor key, bouncer key, watcher token); no user principal gets in. */
type Who = "public" | "authenticated" | "session" | { machine: "sensor" | "bouncer" | "watcher" } | (Principal | (typeof ROLES)[number])[];
const ALL_ROLES = [...ROLES];
const ADMIN = ["admin"] as const;

/**
 * The table. "public": anyone, signed in or not. "authenticated": any principal with a credential.
 * "session": a person logged in (access token), never an API key, whatever its role.
 */
const MATRIX: Record<string, Who> = {
  "GET /healthz": "public",
  "GET /readyz": "public",
  "GET /openapi.json": "public",

  "POST /auth/login": "public",
  "POST /auth/refresh": "public",
  "POST /auth/logout": "public",
  "GET /auth/oidc/login": "public",
  "GET /auth/oidc/callback": "public",
  "GET /auth/whoami": "authenticated",
  "POST /auth/password": "session",
  "GET /auth/sessions": "session",
  "DELETE /auth/sessions/:id": "session",
  "POST /auth/sessions/revoke-all": "session",
  "GET /auth/keys": ALL_ROLES,
  "POST /auth/keys": ALL_ROLES,
  "GET /auth/keys/:id": ALL_ROLES,
  "POST /auth/keys/:id/revoke": ALL_ROLES,

  "GET /users": [...ADMIN],
  "POST /users": [...ADMIN],
  "GET /users/:user": [...ADMIN],
  "POST /users/:user/disable": [...ADMIN],
  "POST /users/:user/enable": [...ADMIN],
  "POST /users/:user/role": [...ADMIN],
  "POST /users/:user/reset-password": [...ADMIN],
  "POST /users/:user/unlock": [...ADMIN],
  "GET /users/:user/sessions": [...ADMIN],
  "POST /users/:user/sessions/revoke": [...ADMIN],

  "GET /security/policy/": ALL_ROLES,
  "POST /security/policy/": [...ADMIN],
  "GET /security/policy/blocks": ALL_ROLES,
  "POST /security/policy/blocks": [...ADMIN],
  "GET /security/policy/blocks/:id": ALL_ROLES,
  "POST /security/policy/blocks/:id/deactivate": [...ADMIN],
  "GET /security/policy/blocks.txt": [...ALL_ROLES, "enforcer"],
  "GET /security/policy/check": [...ALL_ROLES, "enforcer"],

  "GET /audit/entries": ALL_ROLES,
  "GET /audit/entries/:index": ALL_ROLES,
  "GET /audit/checkpoint": ALL_ROLES,
  "POST /audit/checkpoint": [...ADMIN],
  "GET /audit/checkpoints": ALL_ROLES,
  "GET /audit/public-key": ALL_ROLES,
  "GET /audit/proof/inclusion": ALL_ROLES,
  "GET /audit/proof/consistency": ALL_ROLES,

  // Policy-as-code (branch rules): read and simulate for everyone; write, review and activate by role.
  "GET /rules": ALL_ROLES,
  "POST /rules": ["analyst", "admin"],
  "GET /rules/catalogue": ALL_ROLES,
  "GET /rules/schema": ALL_ROLES,
  "POST /rules/validate": ALL_ROLES,
  "POST /rules/evaluate": ALL_ROLES,
  "POST /rules/simulate": ALL_ROLES,
  "POST /rules/test": ALL_ROLES,
  "GET /rules/decisions/:id": ALL_ROLES,
  "GET /rules/:name": ALL_ROLES,
  "GET /rules/:name/diff": ALL_ROLES,
  "GET /rules/:name/versions/:version": ALL_ROLES,
  "PATCH /rules/:name/versions/:version": ["analyst", "admin"],
  "POST /rules/:name/versions/:version/submit": ["analyst", "admin"],
  "POST /rules/:name/versions/:version/review": ["approver", "admin"],
  "POST /rules/:name/versions/:version/activate": ["analyst", "admin"],
  "POST /rules/:name/versions/:version/retire": ["analyst", "admin"],

  // The action workflow. The seed's status update checks the verb's permission in the service (its
  // empty dummy body is refused first, so every reader gets past the route); dry-run needs
  // actions:request or actions:approve; cancel is the requester's (or an admin's).
  "POST /security/actions/": ["analyst", "admin"],
  "GET /security/actions/": ALL_ROLES,
  "GET /security/actions/:id": ALL_ROLES,
  "POST /security/actions/:id": ALL_ROLES,
  "POST /security/actions/:id/dry-run": ["analyst", "approver", "admin"],
  "POST /security/actions/:id/approve": ["approver", "admin"],
  "POST /security/actions/:id/reject": ["approver", "admin"],
  "POST /security/actions/:id/execute": ["executor", "admin"],
  "POST /security/actions/:id/cancel": ["analyst", "admin"],

  // Sensors (issue 7): the registry is an admin matter, reading telemetry everyone's, triage the
  // analyst's; ingestion only with a sensor key (X-HONEYPOT-KEY, or Authorization: Splunk for HEC).
  "POST /security/honeypot/instances": [...ADMIN],
  "GET /security/honeypot/instances": ALL_ROLES,
  "GET /security/honeypot/instances/:id": ALL_ROLES,
  "POST /security/honeypot/instances/:id/deactivate": [...ADMIN],
  "POST /security/honeypot/instances/:id/rotate-key": [...ADMIN],
  "GET /security/honeypot/events": ALL_ROLES,
  "POST /security/honeypot/events/:id/processed": ["analyst", "admin"],
  "POST /security/honeypot/events": { machine: "sensor" },
  "POST /security/honeypot/events/batch": { machine: "sensor" },
  "POST /security/honeypot/ingest/opencanary": { machine: "sensor" },
  "POST /services/collector/event": { machine: "sensor" },
  "POST /services/collector": { machine: "sensor" },

  // CrowdSec Local API (bouncers by X-Api-Key) and its admin API.
  "GET /v1/decisions": { machine: "bouncer" },
  "GET /v1/decisions/stream": { machine: "bouncer" },
  "POST /v1/usage-metrics": { machine: "bouncer" },
  "POST /v1/watchers": "public",
  "POST /v1/watchers/login": "public",
  "GET /v1/heartbeat": { machine: "watcher" },
  "POST /v1/alerts": { machine: "watcher" },
  "GET /v1/alerts": { machine: "watcher" },
  "DELETE /v1/decisions": { machine: "watcher" },
  "DELETE /v1/decisions/:decision_id": { machine: "watcher" },
  "GET /crowdsec/bouncers": [...ADMIN],
  "POST /crowdsec/bouncers": [...ADMIN],
  "DELETE /crowdsec/bouncers/:id": [...ADMIN],
  "GET /crowdsec/watchers": [...ADMIN],
  "POST /crowdsec/watchers/:id/validate": [...ADMIN],
  "DELETE /crowdsec/watchers/:id": [...ADMIN],

  // Detection and dashboard (branch detection): every role reads; analysts (events:triage) resolve.
  "GET /security/incidents": ALL_ROLES,
  "GET /security/incidents/:id": ALL_ROLES,
  "POST /security/incidents/:id/resolve": ["analyst", "admin"],
  "GET /security/dashboard": ALL_ROLES,
};

const allowed = (who: Who, principal: Principal): boolean => {
  if (who === "public") return true;
  if (principal === "anonymous" || !Array.isArray(who) && typeof who === "object") return false;
  if (who === "authenticated") return true;
  if (who === "session") return principal === "analyst-session";
  const asRole = principal === "analyst-session" ? "analyst" : principal;
  return (who as string[]).includes(asRole);
};

const routesOf = (t: TestApp) =>
  t.app.routeTable
    .flatMap((r) => [r.method].flat().map((method) => ({ method, url: r.url, permission: r.config?.permission })))
    .filter((r) => r.method !== "HEAD" && r.method !== "OPTIONS");

describe.each(DB_KINDS)("authorisation matrix on %s", (kind) => {
  let t: TestApp;
  const tokens = new Map<Principal, () => Promise<string | undefined>>();
  beforeAll(async () => {
    t = await createTestApp(kind, { config: { "auth.argon2MemoryKiB": 8192 } });
    tokens.set("anonymous", async () => undefined);
    for (const role of ROLES) {
      const { token } = await createKeyForRole(t.db, role);
      tokens.set(role, async () => token);
    }
    const password = "table-driven-passphrase-7f3a";
    const created = await t.app.inject({ method: "POST", url: "/users", headers: t.auth(), payload: { username: "matrix-analyst", role: "analyst", password } });
    expect(created.statusCode).toBe(201);
    // A fresh session per call: logout and revoke-all end the session they are called with.
    tokens.set("analyst-session", async () => {
      const res = await t.app.inject({ method: "POST", url: "/auth/login", payload: { username: "matrix-analyst", password } });
      expect(res.statusCode).toBe(200);
      return res.json().access_token as string;
    });
    const svc = await t.app.inject({ method: "POST", url: "/users", headers: t.auth(), payload: { username: "edge-firewall", role: "viewer", kind: "service" } });
    expect(svc.statusCode).toBe(201);
    const key = await t.app.inject({ method: "POST", url: "/auth/keys", headers: t.auth(), payload: { name: "bouncer", user: "edge-firewall", permissions: ["blocklist:check"] } });
    expect(key.statusCode).toBe(201);
    tokens.set("enforcer", async () => key.json().key as string);
  });
  afterAll(async () => t?.close());

  it("has exactly one row per route", () => {
    const routes = routesOf(t).filter((r) => !r.url.startsWith("/docs"));
    const keys = routes.map((r) => `${r.method} ${r.url}`);
    expect(keys.filter((k) => !(k in MATRIX)), "routes without a row in the matrix").toEqual([]);
    expect(Object.keys(MATRIX).filter((k) => !keys.includes(k)), "rows without a route").toEqual([]);
    // The API document UI is the only other public surface.
    for (const r of routesOf(t).filter((r) => r.url.startsWith("/docs"))) expect(r.permission, r.url).toBe("public");
  });

  it("lets exactly the table's principals through", async () => {
    const mismatches: string[] = [];
    let calls = 0;
    for (const { method, url } of routesOf(t)) {
      const row = MATRIX[`${method} ${url}`];
      if (!row) continue;
      const path = url
        .replace(":id", "00000000-0000-4000-8000-000000000000")
        .replace(":user", "no-such-user")
        .replace(":index", "0");
      for (const principal of PRINCIPALS) {
        const token = await tokens.get(principal)!();
        const res = await t.app.inject({
          method: method as "GET",
          url: path,
          headers: token ? { authorization: `Bearer ${token}` } : {},
          ...(method === "POST" ? { payload: {} } : {}),
        });
        calls++;
        const code = res.statusCode >= 400 ? (res.json() as { code?: string } | null)?.code : undefined;
        const expectAllowed = allowed(row, principal);
        const denied = res.statusCode === 401 || res.statusCode === 403;
        if (expectAllowed && denied) mismatches.push(`${method} ${url} as ${principal}: expected allowed, got ${res.statusCode} ${code}`);
        if (!expectAllowed && typeof row === "object" && !Array.isArray(row)) {
          // Machine routes answer in their peer's protocol (CrowdSec: 403 {"message":"access forbidden"}).
          if (!denied) mismatches.push(`${method} ${url} as ${principal}: expected 401/403 (${row.machine} credential only), got ${res.statusCode}`);
        } else if (!expectAllowed) {
          const want = principal === "anonymous" ? [401, "UNAUTHENTICATED"] : [403, "FORBIDDEN"];
          if (res.statusCode !== want[0] || code !== want[1]) mismatches.push(`${method} ${url} as ${principal}: expected ${want.join(" ")}, got ${res.statusCode} ${code}`);
        }
        if (res.statusCode >= 500) mismatches.push(`${method} ${url} as ${principal}: ${res.statusCode}`);
      }
    }
    expect(mismatches).toEqual([]);
    expect(calls).toBe(Object.keys(MATRIX).length * PRINCIPALS.length);
  });
});
