// The security policy through the HTTP API: seed defaults, partial updates, validation, audit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";

describe.each(DB_KINDS)("security policy on %s", (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(kind);
  });
  afterAll(async () => t?.close());

  it("starts with the seed's defaults and answers with or without the trailing slash", async () => {
    for (const url of ["/security/policy/", "/security/policy"]) {
      const res = await t.app.inject({ method: "GET", url, headers: t.auth() });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        default_mode: "normal",
        auto_elevate: false,
        auto_lockdown: false,
        max_failed_auth: 5,
        max_scan_events: 10,
        detection_window_minutes: 10,
        notes: "Default policy",
      });
    }
  });

  it("applies a partial update and audits it with before and after", async () => {
    const res = await t.app.inject({
      method: "POST",
      url: "/security/policy/",
      headers: t.auth(),
      payload: { default_mode: "elevated", auto_elevate: true, max_failed_auth: 3 },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ default_mode: "elevated", auto_elevate: true, max_failed_auth: 3, max_scan_events: 10, updated_by: "admin" });
    const audit = (await t.app.inject({ method: "GET", url: "/audit/entries?action=policy.updated", headers: t.auth() })).json().items;
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      before: { default_mode: "normal", auto_elevate: false, max_failed_auth: 5 },
      after: { default_mode: "elevated", auto_elevate: true, max_failed_auth: 3 },
      details: { changed: ["default_mode", "auto_elevate", "max_failed_auth"] },
    });
  });

  it("writes nothing for a request that changes nothing", async () => {
    const before = (await t.app.inject({ method: "GET", url: "/audit/entries?action=policy.updated", headers: t.auth() })).json().items.length;
    const res = await t.app.inject({ method: "POST", url: "/security/policy/", headers: t.auth(), payload: { default_mode: "elevated" } });
    expect(res.statusCode).toBe(200);
    const after = (await t.app.inject({ method: "GET", url: "/audit/entries?action=policy.updated", headers: t.auth() })).json().items.length;
    expect(after).toBe(before);
  });

  it("rejects invalid values and unknown fields with the field path, changing nothing", async () => {
    const cases: [unknown, string][] = [
      [{ default_mode: "panic" }, "default_mode"],
      [{ max_failed_auth: 0 }, "max_failed_auth"],
      [{ max_failed_auth: "5" }, "max_failed_auth"],
      [{ max_scan_events: 1.5 }, "max_scan_events"],
      [{ auto_lockdown: "yes" }, "auto_lockdown"],
      [{ mode: "lockdown" }, "mode"],
    ];
    for (const [payload, path] of cases) {
      const res = await t.app.inject({ method: "POST", url: "/security/policy/", headers: t.auth(), payload: payload as object });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().code).toBe("VALIDATION_FAILED");
      expect(res.json().errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    const empty = await t.app.inject({ method: "POST", url: "/security/policy/", headers: t.auth(), payload: {} });
    expect(empty.statusCode).toBe(400);
    const current = (await t.app.inject({ method: "GET", url: "/security/policy/", headers: t.auth() })).json();
    expect(current.default_mode).toBe("elevated");
  });

  it("lets a viewer read but not change the policy", async () => {
    const viewer = await createKeyForRole(t.db, "viewer");
    expect((await t.app.inject({ method: "GET", url: "/security/policy/", headers: t.auth(viewer.token) })).statusCode).toBe(200);
    const res = await t.app.inject({ method: "POST", url: "/security/policy/", headers: t.auth(viewer.token), payload: { default_mode: "lockdown" } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: "FORBIDDEN", required_permission: "policy:write" });
  });
});
