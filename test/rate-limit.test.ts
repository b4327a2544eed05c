// Rate limits: per address for login, per principal for management, 429 problem+json with
// Retry-After, shared across nodes through the real Redis, and failing open when Redis is down.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomInt } from "node:crypto";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { buildApp } from "../src/app/build.ts";
import { testConfig } from "./helpers/harness.ts";

const REDIS_URL = process.env.PORTCULLIS_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
// Counters live for a minute in Redis; a fresh documentation-range address per test keeps runs apart.
const freshAddress = () => `198.51.${randomInt(0, 255)}.${randomInt(1, 255)}`;
const login = (t: TestApp | { app: TestApp["app"] }, remoteAddress: string) =>
  t.app.inject({ method: "POST", url: "/auth/login", remoteAddress, payload: { username: "nobody", password: "wrong-password-123" } });

describe.each(DB_KINDS)("rate limits on %s", (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(kind, { config: { "rateLimit.enabled": true, "rateLimit.loginPerMinute": 3, "rateLimit.managementPerMinute": 5, "rateLimit.authFailuresPerMinute": 4, "auth.argon2MemoryKiB": 8192 } });
  });
  afterAll(async () => t?.close());

  it("limits logins per client address with a 429 problem and Retry-After", async () => {
    const address = freshAddress();
    for (let i = 0; i < 3; i++) expect((await login(t, address)).statusCode).toBe(401);
    const limited = await login(t, address);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers["content-type"]).toContain("application/problem+json");
    expect(limited.json()).toMatchObject({ code: "RATE_LIMITED", status: 429, limit: 3 });
    const retryAfter = Number(limited.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another address is not affected.
    expect((await login(t, freshAddress())).statusCode).toBe(401);
  });

  it("limits management calls per principal, not per address", async () => {
    const a = await createKeyForRole(t.db, "viewer");
    const b = await createKeyForRole(t.db, "viewer");
    const address = freshAddress();
    const call = (token: string) => t.app.inject({ method: "GET", url: "/security/policy/", remoteAddress: address, headers: t.auth(token) });
    for (let i = 0; i < 5; i++) expect((await call(a.token)).statusCode).toBe(200);
    expect((await call(a.token)).statusCode).toBe(429);
    expect((await call(b.token)).statusCode).toBe(200);
  });

  it("limits failed authentications per address before any route limit", async () => {
    const address = freshAddress();
    const bad = () => t.app.inject({ method: "GET", url: "/security/policy/", remoteAddress: address, headers: t.auth(`pc_${"x".repeat(43)}`) });
    for (let i = 0; i < 4; i++) expect((await bad()).statusCode).toBe(401);
    const limited = await bad();
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: "RATE_LIMITED" });
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    // Another address with a good key is unaffected.
    expect((await t.app.inject({ method: "GET", url: "/security/policy/", remoteAddress: freshAddress(), headers: t.auth() })).statusCode).toBe(200);
  });

  it("never limits health probes and counts enforcement checks separately", async () => {
    for (let i = 0; i < 8; i++) expect((await t.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    const enforcer = await createKeyForRole(t.db, "viewer");
    for (let i = 0; i < 8; i++)
      expect((await t.app.inject({ method: "GET", url: "/security/policy/check?ip=203.0.113.9", headers: t.auth(enforcer.token) })).statusCode).toBe(200);
  });
});

describe.each(DB_KINDS)("rate limits across nodes through Redis on %s", (kind) => {
  let node1: TestApp;
  let node2: Awaited<ReturnType<typeof buildApp>>;
  const settings = { redisUrl: REDIS_URL, "rateLimit.enabled": true, "rateLimit.loginPerMinute": 4, "auth.argon2MemoryKiB": 8192 };
  beforeAll(async () => {
    node1 = await createTestApp(kind, { config: settings });
    // A second node on the same database and the same Redis.
    node2 = await buildApp({ config: testConfig(settings), db: node1.db, logger: false });
  });
  afterAll(async () => {
    await node2?.close();
    await node1?.close();
  });

  it("shares one login budget between the nodes", async () => {
    const address = freshAddress();
    expect((await login(node1, address)).statusCode).toBe(401);
    expect((await login({ app: node2 }, address)).statusCode).toBe(401);
    expect((await login(node1, address)).statusCode).toBe(401);
    expect((await login({ app: node2 }, address)).statusCode).toBe(401);
    // The fifth attempt overall is refused by whichever node takes it.
    expect((await login(node1, address)).statusCode).toBe(429);
    expect((await login({ app: node2 }, address)).statusCode).toBe(429);
  });
});

describe("rate limits when Redis is down", () => {
  it("fail open: requests are served, the outage is logged", async () => {
    const t = await createTestApp("pglite", { config: { redisUrl: "redis://127.0.0.1:1", "rateLimit.enabled": true, "rateLimit.loginPerMinute": 1, "auth.argon2MemoryKiB": 8192 } });
    try {
      const address = freshAddress();
      expect((await login(t, address)).statusCode).toBe(401);
      expect((await login(t, address)).statusCode).toBe(401);
      expect((await t.app.inject({ method: "GET", url: "/security/policy/", headers: t.auth() })).statusCode).toBe(200);
      expect(t.logs.join("\n")).toContain("redis (rate limits)");
    } finally {
      await t.close();
    }
  });
});
