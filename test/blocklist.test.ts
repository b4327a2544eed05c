// Blocklist behaviour through the HTTP API on a real database: normalisation, guardrails, exact
// expiry, deactivation, the enforcement check, the feed, pagination, and the audit trail.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { manualClock } from "../src/lib/time.ts";

// Real attacker addresses from the Cowrie fixtures (public space, so no guardrail applies).
const ATTACKER = "5.188.86.172";
const ATTACKER_V6 = "2a01:4f8:1c1c:7a2::1";

describe.each(DB_KINDS)("blocklist on %s", (kind) => {
  let t: TestApp;
  const clock = manualClock("2026-11-01T00:00:00.000Z");
  beforeAll(async () => {
    t = await createTestApp(kind, { clock });
  });
  afterAll(async () => t?.close());

  const post = (url: string, payload: unknown, token?: string) =>
    t.app.inject({ method: "POST", url, payload: payload as object, headers: t.auth(token) });
  const get = (url: string, token?: string) => t.app.inject({ method: "GET", url, headers: t.auth(token) });
  const auditFor = async (targetId: string) =>
    (await get(`/audit/entries?target_type=block&target_id=${targetId}`)).json().items as Array<Record<string, any>>;

  it("blocks an IP given in IPv4-mapped IPv6 form, stores it canonically, and audits the creation", async () => {
    const res = await post("/security/policy/blocks", { entity_type: "ip", value: `::ffff:${ATTACKER}`, reason: "ssh brute force" });
    expect(res.statusCode).toBe(201);
    const block = res.json();
    expect(block).toMatchObject({ entity_type: "ip", value: ATTACKER, reason: "ssh brute force", active: true, created_by: "admin", expires_at: null, forced: false });
    const audit = await auditFor(block.id);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: "blocklist.block.created", actor: { type: "user" }, after: { value: ATTACKER, active: true } });
    expect(audit[0]!.request_id).toBe(res.headers["x-request-id"]);
  });

  it("refuses a second active block for the same value with 409 BLOCK_EXISTS naming the first", async () => {
    const first = (await get(`/security/policy/blocks?q=${ATTACKER}&active=true`)).json().items[0];
    const res = await post("/security/policy/blocks", { entity_type: "ip", value: ATTACKER });
    expect(res.statusCode).toBe(409);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    expect(res.json()).toMatchObject({ code: "BLOCK_EXISTS", status: 409, existing_block_id: first.id });
    expect(res.json().detail).toContain(first.id);
  });

  it("answers the enforcement check for plain, v4-mapped and unblocked addresses", async () => {
    const hit = (await get(`/security/policy/check?ip=${ATTACKER}`)).json();
    expect(hit.blocked).toBe(true);
    expect(hit.matches).toEqual([expect.objectContaining({ type: "ip", value: ATTACKER, reason: "ssh brute force", expires_at: null })]);
    expect((await get(`/security/policy/check?ip=::ffff:${ATTACKER}`)).json().blocked).toBe(true);
    expect((await get("/security/policy/check?ip=5.188.86.173")).json()).toEqual({ blocked: false, matches: [] });
  });

  it("normalises CIDRs to their network address and matches nested blocks", async () => {
    const res = await post("/security/policy/blocks", { entity_type: "cidr", value: "5.188.86.77/24", reason: "scanner range" });
    expect(res.statusCode).toBe(201);
    expect(res.json().value).toBe("5.188.86.0/24");
    const check = (await get(`/security/policy/check?ip=${ATTACKER}`)).json();
    expect(check.matches.map((m: { value: string }) => m.value).sort()).toEqual(["5.188.86.0/24", ATTACKER]);
    expect((await get("/security/policy/check?ip=5.188.86.255")).json().matches).toHaveLength(1);
    expect((await get("/security/policy/check?ip=5.188.87.0")).json().blocked).toBe(false);
    const v6 = await post("/security/policy/blocks", { entity_type: "cidr", value: "2a01:4f8:1c1c:7a2:0:0:0:0/64" });
    expect(v6.json().value).toBe("2a01:4f8:1c1c:7a2::/64");
    expect((await get(`/security/policy/check?ip=${ATTACKER_V6}`)).json().blocked).toBe(true);
  });

  it("refuses protected and too-broad ranges unless an admin forces it, and audits the override", async () => {
    for (const [type, value, code] of [
      ["ip", "127.0.0.1", "PROTECTED_NETWORK"],
      ["ip", "10.1.2.3", "PROTECTED_NETWORK"],
      ["ip", "fe80::1", "PROTECTED_NETWORK"],
      ["ip", "::1", "PROTECTED_NETWORK"],
      ["ip", "224.0.0.5", "PROTECTED_NETWORK"],
      ["cidr", "8.0.0.0/7", "CIDR_TOO_BROAD"],
      ["cidr", "2a00::/16", "CIDR_TOO_BROAD"],
      ["cidr", "172.0.0.0/11", "PROTECTED_NETWORK"],
    ] as const) {
      const res = await post("/security/policy/blocks", { entity_type: type, value });
      expect(res.statusCode, `${value}`).toBe(422);
      expect(res.json().code, `${value}`).toBe(code);
    }
    const forced = await post("/security/policy/blocks", { entity_type: "ip", value: "10.1.2.3", reason: "compromised host", force: true });
    expect(forced.statusCode).toBe(201);
    expect(forced.json().forced).toBe(true);
    const audit = await auditFor(forced.json().id);
    expect(audit[0]!.details).toMatchObject({ forced: true, overridden: [expect.objectContaining({ code: "PROTECTED_NETWORK" })] });
  });

  it("does not let a non-admin force, nor a viewer write", async () => {
    const viewer = await createKeyForRole(t.db, "viewer");
    const res = await post("/security/policy/blocks", { entity_type: "ip", value: "5.188.10.1" }, viewer.token);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: "FORBIDDEN", required_permission: "blocklist:write" });
    // The viewer can still check and read.
    expect((await get(`/security/policy/check?ip=${ATTACKER}`, viewer.token)).statusCode).toBe(200);
    expect((await get("/security/policy/blocks", viewer.token)).statusCode).toBe(200);
  });

  it("honours the configured protected networks", async () => {
    const other = await createTestApp(kind, { config: { "blocklist.protectedNetworks": ["93.184.216.0/24"] } });
    try {
      const res = await other.app.inject({ method: "POST", url: "/security/policy/blocks", headers: other.auth(), payload: { entity_type: "cidr", value: "93.184.0.0/16" } });
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ code: "PROTECTED_NETWORK" });
      expect(res.json().detail).toContain("93.184.216.0/24");
    } finally {
      await other.close();
    }
  });

  it("expires a block at the exact instant, frees its slot, and records the expiry in the audit log", async () => {
    const expiresAt = new Date(clock.now().getTime() + 3_600_000).toISOString();
    const res = await post("/security/policy/blocks", { entity_type: "ip", value: "45.95.147.10", expires_at: expiresAt });
    expect(res.statusCode).toBe(201);
    const id = res.json().id;
    clock.set(new Date(Date.parse(expiresAt) - 1));
    expect((await get("/security/policy/check?ip=45.95.147.10")).json().blocked).toBe(true);
    clock.set(expiresAt);
    expect((await get("/security/policy/check?ip=45.95.147.10")).json().blocked).toBe(false);
    const shown = (await get(`/security/policy/blocks/${id}`)).json();
    expect(shown).toMatchObject({ active: false, deactivated_at: expiresAt, deactivated_by: "system:expiry" });
    expect((await get("/security/policy/blocks?active=true&q=45.95.147.10")).json().items).toHaveLength(0);
    expect((await get("/security/policy/blocks.txt")).body).not.toContain("45.95.147.10");
    // The slot is free even before the sweep ran, and the expiry is recorded on the way.
    const again = await post("/security/policy/blocks", { entity_type: "ip", value: "45.95.147.10" });
    expect(again.statusCode).toBe(201);
    expect((await auditFor(id)).map((e) => e.action)).toEqual(["blocklist.block.created", "blocklist.block.expired"]);
  });

  it("sweeps expired blocks into the audit log", async () => {
    const res = await post("/security/policy/blocks", { entity_type: "user", value: "mallory", expires_at: new Date(clock.now().getTime() + 60_000).toISOString() });
    const id = res.json().id;
    expect((await get("/security/policy/check?user=mallory")).json().blocked).toBe(true);
    clock.advance(60_000);
    expect((await get("/security/policy/check?user=mallory")).json().blocked).toBe(false);
    expect(await t.app.services.blocklist.sweepExpired()).toBeGreaterThanOrEqual(1);
    expect((await auditFor(id)).map((e) => e.action)).toEqual(["blocklist.block.created", "blocklist.block.expired"]);
    expect(await t.app.services.blocklist.sweepExpired()).toBe(0);
  });

  it("rejects an expiry in the past with the field named", async () => {
    const res = await post("/security/policy/blocks", { entity_type: "ip", value: "45.95.147.11", expires_at: "2020-01-01T00:00:00Z" });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "EXPIRY_IN_PAST", errors: [{ path: "expires_at" }] });
  });

  it("deactivates a block once: it stops matching at once and a second try is 409", async () => {
    const id = (await post("/security/policy/blocks", { entity_type: "ip", value: "185.220.101.4" })).json().id;
    expect((await get("/security/policy/check?ip=185.220.101.4")).json().blocked).toBe(true);
    const res = await post(`/security/policy/blocks/${id}/deactivate`, { reason: "false positive" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ active: false, deactivated_by: "admin" });
    expect((await get("/security/policy/check?ip=185.220.101.4")).json().blocked).toBe(false);
    const again = await post(`/security/policy/blocks/${id}/deactivate`, {});
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe("BLOCK_NOT_ACTIVE");
    const audit = await auditFor(id);
    expect(audit.map((e) => e.action)).toEqual(["blocklist.block.created", "blocklist.block.deactivated"]);
    expect(audit[1]).toMatchObject({ before: { active: true }, after: { active: false }, details: { reason: "false positive" } });
    expect((await post("/security/policy/blocks/00000000-0000-4000-8000-000000000000/deactivate", {})).json().code).toBe("BLOCK_NOT_FOUND");
    // As in the README's curl example: no body at all.
    const bare = (await post("/security/policy/blocks", { entity_type: "ip", value: "185.220.101.5" })).json().id;
    const noBody = await t.app.inject({ method: "POST", url: `/security/policy/blocks/${bare}/deactivate`, headers: t.auth() });
    expect(noBody.statusCode).toBe(200);
    expect(noBody.json().active).toBe(false);
    expect((await get("/security/policy/blocks/not-a-uuid")).statusCode).toBe(404);
  });

  it("blocks users and API keys by exact value, and never stores a whole API key", async () => {
    await post("/security/policy/blocks", { entity_type: "user", value: "eve" });
    await post("/security/policy/blocks", { entity_type: "api_key", value: "pc_ab12cd34" });
    expect((await get("/security/policy/check?user=eve")).json().blocked).toBe(true);
    expect((await get("/security/policy/check?user=Eve")).json().blocked).toBe(false);
    expect((await get("/security/policy/check?api_key=pc_ab12cd34")).json().blocked).toBe(true);
    const whole = await post("/security/policy/blocks", { entity_type: "api_key", value: `pc_${"x".repeat(43)}` });
    expect(whole.statusCode).toBe(400);
    expect(whole.json()).toMatchObject({ code: "INVALID_BLOCK_VALUE", errors: [{ path: "value" }] });
  });

  it("serves active IPs and CIDRs as a plain-text feed", async () => {
    const res = await get("/security/policy/blocks.txt");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toContain("text/plain");
    const lines = res.body.trim().split("\n");
    expect(lines).toContain(ATTACKER);
    expect(lines).toContain("5.188.86.0/24");
    expect(lines).not.toContain("185.220.101.4");
    expect(lines.some((l) => l === "eve")).toBe(false);
  });

  it("paginates with cursors and filters", async () => {
    for (let i = 0; i < 5; i++) await post("/security/policy/blocks", { entity_type: "user", value: `page-user-${i}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(`/security/policy/blocks?type=user&q=page-user-&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      seen.push(...body.items.map((b: { value: string }) => b.value));
      cursor = body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(["page-user-4", "page-user-3", "page-user-2", "page-user-1", "page-user-0"]);
    expect((await get("/security/policy/blocks?limit=1001")).json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "limit" }] });
    expect((await get("/security/policy/blocks?cursor=garbage")).json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "cursor" }] });
    for (const forged of [["2026-01-01T00:00:00Z", "x"], ["+275760-09-13T00:00:00Z", "00000000-0000-4000-8000-000000000000"], ["-271821-04-20T00:00:00Z", "00000000-0000-4000-8000-000000000000"]]) {
      const cursor = Buffer.from(JSON.stringify(forged)).toString("base64url");
      const res = await get(`/security/policy/blocks?cursor=${cursor}`);
      expect(res.statusCode, JSON.stringify(forged)).toBe(400);
      expect(res.json().errors[0].path).toBe("cursor");
    }
    expect((await get("/security/policy/blocks?type=host")).statusCode).toBe(400);
    expect((await get("/security/policy/blocks?colour=red")).json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "colour" }] });
  });

  it("rejects bad values with the field named, never a 500", async () => {
    for (const payload of [
      { entity_type: "ip", value: "999.1.1.1" },
      { entity_type: "ip", value: "010.1.1.1" },
      { entity_type: "ip", value: "5.188.86.0/24" },
      { entity_type: "cidr", value: "5.188.86.1" },
      { entity_type: "cidr", value: "5.188.86.0/33" },
      { entity_type: "ip", value: "fe80::1%eth0" },
    ]) {
      const res = await post("/security/policy/blocks", payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().errors[0].path).toBe("value");
    }
    const unknown = await post("/security/policy/blocks", { entity_type: "ip", value: "5.188.86.9", colour: "red" });
    expect(unknown.json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "colour", message: "unknown field" }] });
    const badType = await post("/security/policy/blocks", { entity_type: "host", value: "x" });
    expect(badType.json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "entity_type" }] });
    expect((await get("/security/policy/check?ip=not-an-ip")).json()).toMatchObject({ code: "INVALID_IP", errors: [{ path: "ip" }] });
    expect((await get("/security/policy/check")).statusCode).toBe(400);
  });

  it("lets exactly one of ten concurrent creations of the same block win", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => post("/security/policy/blocks", { entity_type: "ip", value: "193.32.162.5" })),
    );
    const codes = results.map((r) => r.statusCode).sort();
    expect(codes).toEqual([201, ...Array(9).fill(409)]);
    const created = (await get("/audit/entries?action=blocklist.block.created&limit=1000")).json().items.filter(
      (e: { after: { value: string } }) => e.after.value === "193.32.162.5",
    );
    expect(created).toHaveLength(1);
  });

  it("keeps the audit log gap-free even when transactions fail", async () => {
    const all: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { index: number }[]; next_cursor: string | null } = (await get(`/audit/entries?limit=1000${cursor ? `&cursor=${cursor}` : ""}`)).json();
      all.push(...page.items.map((e: { index: number }) => e.index));
      cursor = page.next_cursor;
    } while (cursor);
    expect(all.length).toBeGreaterThan(10);
    expect(all).toEqual(all.map((_, i) => i));
  });
});

describe.each(DB_KINDS.filter((k) => k === "postgres"))("blocklist across two nodes on %s", () => {
  it("a block made on one node is enforced by the other through LISTEN/NOTIFY", async () => {
    const a = await createTestApp("postgres");
    const { buildApp } = await import("../src/app/build.ts");
    const { openDatabase } = await import("../src/db/client.ts");
    const { testConfig } = await import("./helpers/harness.ts");
    const dbB = await openDatabase({ databaseUrl: a.db.url! });
    const b = await buildApp({ config: testConfig(), db: dbB, logger: false });
    try {
      const res = await a.app.inject({ method: "POST", url: "/security/policy/blocks", headers: a.auth(), payload: { entity_type: "ip", value: "141.98.11.11" } });
      expect(res.statusCode).toBe(201);
      const checkB = async () => (await b.inject({ method: "GET", url: "/security/policy/check?ip=141.98.11.11", headers: a.auth() })).json().blocked;
      const deadline = Date.now() + 5000;
      while (!(await checkB()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await checkB()).toBe(true);
      await a.app.inject({ method: "POST", url: `/security/policy/blocks/${res.json().id}/deactivate`, headers: a.auth(), payload: {} });
      const deadline2 = Date.now() + 5000;
      while ((await checkB()) && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 20));
      expect(await checkB()).toBe(false);
    } finally {
      await b.close();
      await dbB.close();
      await a.close();
    }
  });
});
