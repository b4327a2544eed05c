// Cross-cutting HTTP behaviour: default deny on every route, problem+json for every error,
// authentication failures that say why, health/readiness, OpenAPI and docs, no secrets in logs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { sql } from "drizzle-orm";

describe.each(DB_KINDS)("HTTP contract on %s", (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(kind);
  });
  afterAll(async () => t?.close());

  const PUBLIC = new Set(["/healthz", "/readyz", "/openapi.json", "/auth/login", "/auth/refresh", "/auth/logout", "/auth/oidc/login", "/auth/oidc/callback", "/v1/watchers", "/v1/watchers/login"]);

  it("every registered route declares a permission (default deny)", () => {
    const missing = t.app.routeTable.filter((r) => !r.config?.permission).map((r) => `${String(r.method)} ${r.url}`);
    expect(missing).toEqual([]);
    const publicRoutes = t.app.routeTable.filter((r) => r.config?.permission === "public").map((r) => r.url);
    for (const url of publicRoutes) expect(PUBLIC.has(url) || url.startsWith("/docs"), url).toBe(true);
  });

  // Routes that speak a peer's protocol answer a missing credential in that protocol's format.
  const PEER_PROTOCOL: Record<string, { body: unknown }> = {
    // Splunk HEC (stock Cowrie's output_splunk).
    "/services/collector/event": { body: { text: "Token is required", code: 2 } },
    "/services/collector": { body: { text: "Token is required", code: 2 } },
  };

  it("every non-public route answers 401 problem+json without credentials", async () => {
    for (const [url, { body }] of Object.entries(PEER_PROTOCOL)) {
      const res = await t.app.inject({ method: "POST", url });
      expect(res.statusCode, url).toBe(401);
      expect(res.json(), url).toEqual(body);
    }

    // Machine-credential routes answer in their peer's protocol (CrowdSec: 403 {"message":"access forbidden"}).
    const routes = t.app.routeTable.filter((r) => r.config?.permission !== "public" && !(r.config as { credential?: string } | undefined)?.credential);
    expect(routes.length).toBeGreaterThan(8);
    for (const route of routes) {
      for (const method of [route.method].flat()) {
        if (method === "HEAD") continue;
        const url = route.url.replace(/:(\w+)/g, "00000000-0000-4000-8000-000000000000");
        const res = await t.app.inject({ method: method as "GET", url });
        expect(res.statusCode, `${method} ${url}`).toBe(401);
        expect(res.headers["content-type"]).toContain("application/problem+json");
        expect(res.json()).toMatchObject({ code: "UNAUTHENTICATED", status: 401 });
      }
    }
  });

  it("says why a key is refused, by prefix and never by secret", async () => {
    const unknown = await t.app.inject({ method: "GET", url: "/auth/whoami", headers: { authorization: "Bearer pc_nonsense-key-that-does-not-exist" } });
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json().code).toBe("API_KEY_INVALID");
    const viewer = await createKeyForRole(t.db, "viewer");
    await t.db.orm.execute(sql`UPDATE api_keys SET revoked_at = now() WHERE prefix = ${viewer.prefix}`);
    t.app.services.identity.invalidateCache();
    const revoked = await t.app.inject({ method: "GET", url: "/auth/whoami", headers: t.auth(viewer.token) });
    expect(revoked.statusCode).toBe(401);
    expect(revoked.json().code).toBe("API_KEY_REVOKED");
    expect(revoked.json().detail).toContain(viewer.prefix);
    expect(revoked.body).not.toContain(viewer.token);
    const malformed = await t.app.inject({ method: "GET", url: "/auth/whoami", headers: { authorization: "Basic abc" } });
    expect(malformed.json().code).toBe("UNAUTHENTICATED");
  });

  it("shows the caller its principal and permissions", async () => {
    const res = await t.app.inject({ method: "GET", url: "/auth/whoami", headers: t.auth() });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ kind: "user", username: "admin", role: "admin" });
    expect(res.json().permissions).toContain("blocklist:force");
  });

  it("answers malformed requests with problem+json and a stable code, never 500", async () => {
    const bad = [
      { payload: "{not json", headers: { "content-type": "application/json" }, status: 400, code: "MALFORMED_BODY" },
      { payload: "entity_type=ip", headers: { "content-type": "text/plain" }, status: 415, code: "UNSUPPORTED_MEDIA_TYPE" },
      { payload: JSON.stringify({ entity_type: "user", value: "x", reason: "r".repeat(2_000_000) }), headers: { "content-type": "application/json" }, status: 413, code: "PAYLOAD_TOO_LARGE" },
      { payload: "[1,2,3]", headers: { "content-type": "application/json" }, status: 400, code: "VALIDATION_FAILED" },
      { payload: "null", headers: { "content-type": "application/json" }, status: 400, code: "VALIDATION_FAILED" },
    ];
    for (const c of bad) {
      const res = await t.app.inject({ method: "POST", url: "/security/policy/blocks", payload: c.payload, headers: { ...t.auth(), ...c.headers } });
      expect(res.statusCode, c.code).toBe(c.status);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      const body = res.json();
      expect(body).toMatchObject({ code: c.code, status: c.status, type: `urn:portcullis:problem:${c.code}` });
      expect(typeof body.title).toBe("string");
      expect(typeof body.detail).toBe("string");
      expect(body.requestId).toBe(res.headers["x-request-id"]);
    }
    const notFound = await t.app.inject({ method: "GET", url: "/nope" });
    expect(notFound.statusCode).toBe(404);
    expect(notFound.json()).toMatchObject({ code: "NOT_FOUND" });
  });

  it("survives hostile query strings without a 500", async () => {
    const samples = ["%", "%00", "a".repeat(5000), "::ffff:999.1.1.1", "1.1.1.1/0", "[]", "{}", "\u0000", "1e400"];
    for (const s of samples) {
      for (const url of [`/security/policy/check?ip=${encodeURIComponent(s)}`, `/security/policy/blocks?q=${encodeURIComponent(s)}`, `/security/policy/blocks?created_from=${encodeURIComponent(s)}`, `/audit/entries?cursor=${encodeURIComponent(s)}`]) {
        const res = await t.app.inject({ method: "GET", url, headers: t.auth() });
        expect(res.statusCode, url).toBeLessThan(500);
      }
    }
  });

  it("refuses text that cannot be stored unchanged (unpaired surrogates, NUL) instead of altering it", async () => {
    for (const payload of ['{"entity_type":"user","value":"eve","reason":"\\ud800"}', '{"entity_type":"user","value":"\\udc00x"}', '{"entity_type":"user","value":"a\\u0000b"}']) {
      const res = await t.app.inject({ method: "POST", url: "/security/policy/blocks", payload, headers: { ...t.auth(), "content-type": "application/json" } });
      expect(res.statusCode, payload).toBe(400);
      expect(res.json().code).toBe("VALIDATION_FAILED");
    }
    const notes = await t.app.inject({ method: "POST", url: "/security/policy/", payload: '{"notes":"\\ud83d"}', headers: { ...t.auth(), "content-type": "application/json" } });
    expect(notes.json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "notes" }] });
    const badUrl = await t.app.inject({ method: "GET", url: "/security/policy/blocks/%E0%A4%A", headers: t.auth() });
    expect(badUrl.statusCode).toBe(400);
    expect(badUrl.headers["content-type"]).toContain("application/problem+json");
  });

  it("propagates a caller's request id and makes one otherwise", async () => {
    const res = await t.app.inject({ method: "GET", url: "/healthz", headers: { "x-request-id": "trace-abc-123" } });
    expect(res.headers["x-request-id"]).toBe("trace-abc-123");
    const made = await t.app.inject({ method: "GET", url: "/healthz", headers: { "x-request-id": "bad id with spaces" } });
    expect(made.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("reports health and readiness", async () => {
    expect((await t.app.inject({ method: "GET", url: "/healthz" })).json()).toEqual({ status: "ok" });
    expect((await t.app.inject({ method: "GET", url: "/readyz" })).json()).toEqual({ status: "ready", database: kind });
  });

  it("publishes OpenAPI 3.1 generated from the schemas, and the docs UI", async () => {
    const doc = (await t.app.inject({ method: "GET", url: "/openapi.json" })).json();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/security/policy/", "/security/policy/blocks", "/security/policy/check"]));
    const create = doc.paths["/security/policy/blocks"].post;
    expect(create.requestBody.content["application/json"].schema.$ref).toBe("#/components/schemas/BlockCreateInput");
    expect(Object.keys(doc.components.schemas.BlockCreateInput.properties)).toEqual(["entity_type", "value", "reason", "expires_at", "force"]);
    expect(doc.components.schemas.BlockCreateInput.additionalProperties).toBe(false);
    const docs = await t.app.inject({ method: "GET", url: "/docs/" });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain("swagger");
  });

  it("never writes a key or token into the logs", async () => {
    await t.app.inject({ method: "GET", url: "/auth/whoami", headers: t.auth() });
    await t.app.inject({ method: "GET", url: "/auth/whoami", headers: { authorization: "Bearer pc_leak-probe-secret-value-1234567890" } });
    const all = t.logs.join("");
    expect(all).not.toContain(t.adminToken);
    expect(all).not.toContain("leak-probe-secret-value");
  });
});
