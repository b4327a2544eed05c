// The CrowdSec bouncer surface on a real database: keys (403 exactly as CrowdSec, hashed at rest),
// GET /v1/decisions filters, the stream's startup and delta answers (deactivation, expiry by time
// and by the sweep, no repeats), the commit-order hazard of "changed since the last pull", bouncer
// management with its audit trail, and every answer checked against the swagger's schemas.
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, DB_KINDS, describePostgres, testConfig, type TestApp } from "./helpers/harness.ts";
import { buildApp } from "../src/app/build.ts";
import { rememberSecret } from "./helpers/secret-scan.ts";
import { manualClock } from "../src/lib/time.ts";
import { systemActor } from "../src/domains/identity/principal.ts";
import { lapiValidator } from "./helpers/crowdsec.ts";

const validate = lapiValidator();

describe.each(DB_KINDS)("CrowdSec bouncers on %s", (kind) => {
  let t: TestApp;
  let key: string;
  const clock = manualClock("2026-11-01T00:00:00.000Z");
  beforeAll(async () => {
    t = await createTestApp(kind, { clock });
    const res = await t.app.inject({ method: "POST", url: "/crowdsec/bouncers", headers: t.auth(), payload: { name: "edge-fw" } });
    expect(res.statusCode).toBe(201);
    key = res.json().key;
    rememberSecret(key);
  });
  afterAll(async () => t?.close());

  const bouncer = (url: string, apiKey = key, method: "GET" | "HEAD" = "GET") =>
    t.app.inject({ method, url, headers: { "x-api-key": apiKey, "user-agent": "crowdsec-firewall-bouncer/v0.0.25-debian" } });
  const block = async (value: string, extra: Record<string, unknown> = {}) => {
    const res = await t.app.inject({
      method: "POST",
      url: "/security/policy/blocks",
      headers: t.auth(),
      payload: { entity_type: value.includes("/") ? "cidr" : "ip", value, reason: "ssh brute force", ...extra },
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string };
  };
  const deactivate = async (id: string) => {
    const res = await t.app.inject({ method: "POST", url: `/security/policy/blocks/${id}/deactivate`, headers: t.auth(), payload: {} });
    expect(res.statusCode).toBe(200);
  };
  const stream = async (query = "") => {
    const res = await bouncer(`/v1/decisions/stream${query}`);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(validate("DecisionsStreamResponse", body), JSON.stringify(validate.errors)).toBe(true);
    return body as { new: Decision[]; deleted: Decision[] };
  };
  type Decision = { id: number; value: string; scope: string; type: string; origin: string; scenario: string; duration: string };

  it("refuses a missing or unknown key with 403 {\"message\":\"access forbidden\"}", async () => {
    for (const headers of [{}, { "x-api-key": "not-a-key" }, { authorization: `Bearer ${t.adminToken}` }]) {
      for (const url of ["/v1/decisions?ip=1.2.3.4", "/v1/decisions/stream?startup=true"]) {
        const res = await t.app.inject({ method: "GET", url, headers });
        expect(res.statusCode).toBe(403);
        expect(res.body).toBe('{"message":"access forbidden"}');
        expect(res.headers["content-type"]).toContain("application/json");
      }
    }
  });

  it("stores only the key's SHA-256 and shows the key once", async () => {
    const rows = (await t.db.query<{ key_hash: string; key_prefix: string }>("SELECT key_hash, key_prefix FROM crowdsec_bouncers WHERE name = 'edge-fw'"))[0]!;
    const { createHash } = await import("node:crypto");
    expect(rows.key_hash).toBe(createHash("sha256").update(key).digest("hex"));
    expect(key.startsWith(rows.key_prefix)).toBe(true);
    const list = await t.app.inject({ method: "GET", url: "/crowdsec/bouncers", headers: t.auth() });
    expect(list.body).not.toContain(key);
  });

  it("answers null when nothing matches and the decisions that cover an IP otherwise", async () => {
    const empty = await bouncer("/v1/decisions?ip=91.121.72.7");
    expect(empty.statusCode).toBe(200);
    expect(empty.body).toBe("null");
    await block("5.188.86.172", { expires_at: "2026-11-01T04:00:00.000Z" });
    await block("91.121.72.0/24");
    const hit = await bouncer("/v1/decisions?ip=91.121.72.7");
    const list = hit.json() as Decision[];
    expect(validate("GetDecisionsResponse", list), JSON.stringify(validate.errors)).toBe(true);
    expect(list).toEqual([
      { duration: "87600h0m0s", id: expect.any(Number), origin: "portcullis", scenario: "ssh brute force", scope: "Range", type: "ban", value: "91.121.72.0/24" },
    ]);
    const ip = (await bouncer("/v1/decisions?ip=5.188.86.172")).json() as Decision[];
    expect(ip).toEqual([expect.objectContaining({ scope: "Ip", value: "5.188.86.172", duration: "4h0m0s" })]);
    clock.advance(1500);
    expect((await bouncer("/v1/decisions?ip=5.188.86.172")).json()[0].duration).toBe("3h59m58.5s");
    // ids are stable integers
    expect((await bouncer("/v1/decisions?ip=5.188.86.172")).json()[0].id).toBe(ip[0]!.id);
  });

  it("filters by range (contains or contained), scope/value, type, origins and scenarios", async () => {
    const ids = (res: { json(): unknown }) => ((res.json() as Decision[] | null) ?? []).map((d) => d.value).sort();
    expect(ids(await bouncer("/v1/decisions?range=91.121.72.128/25"))).toEqual(["91.121.72.0/24"]);
    expect(ids(await bouncer("/v1/decisions?range=91.121.0.0/16&contains=false"))).toEqual(["91.121.72.0/24"]);
    expect(ids(await bouncer("/v1/decisions?range=91.121.0.0/16"))).toEqual([]);
    expect(ids(await bouncer("/v1/decisions?scope=ip&value=5.188.86.172"))).toEqual(["5.188.86.172"]);
    expect(ids(await bouncer("/v1/decisions?scope=range"))).toEqual(["91.121.72.0/24"]);
    expect(ids(await bouncer("/v1/decisions?scope=username&value=bob"))).toEqual([]);
    expect(ids(await bouncer("/v1/decisions?ip=5.188.86.172&type=captcha"))).toEqual([]);
    expect(ids(await bouncer("/v1/decisions?ip=5.188.86.172&type=ban"))).toEqual(["5.188.86.172"]);
    expect(ids(await bouncer("/v1/decisions?ip=5.188.86.172&origins=cscli"))).toEqual([]);
    expect(ids(await bouncer("/v1/decisions?ip=5.188.86.172&origins=cscli,portcullis"))).toEqual(["5.188.86.172"]);
    expect(ids(await bouncer("/v1/decisions?ip=5.188.86.172&scenarios_containing=SSH"))).toEqual(["5.188.86.172"]);
    expect(ids(await bouncer("/v1/decisions?ip=5.188.86.172&scenarios_not_containing=brute"))).toEqual([]);
    expect(ids(await bouncer("/v1/decisions"))).toEqual(["5.188.86.172", "91.121.72.0/24"]);
    const bad = await bouncer("/v1/decisions?ip=not-an-ip");
    expect(bad.statusCode).toBe(400);
    expect(validate("ErrorResponse", bad.json())).toBe(true);
  });

  it("streams everything at startup, then only changes; deactivations and expiries arrive once in deleted", async () => {
    const first = await stream("?startup=true");
    expect(first.new.map((d) => d.value).sort()).toEqual(["5.188.86.172", "91.121.72.0/24"]);
    expect(await stream()).toEqual({ new: [], deleted: [] });
    const fresh = await block("45.33.32.0/24");
    const short = await block("45.33.33.1", { expires_at: new Date(clock.now().getTime() + 60_000).toISOString() });
    const second = await stream();
    expect(second.new.map((d) => d.value).sort()).toEqual(["45.33.32.0/24", "45.33.33.1"]);
    expect(second.deleted).toEqual([]);
    await deactivate(fresh.id);
    const third = await stream();
    expect(third).toMatchObject({ new: [], deleted: [expect.objectContaining({ value: "45.33.32.0/24", scope: "Range", type: "ban" })] });
    // The short block expires: reported by time before the sweep records it ...
    clock.advance(61_000);
    const fourth = await stream();
    expect(fourth.new).toEqual([]);
    expect(fourth.deleted).toEqual([expect.objectContaining({ value: "45.33.33.1", duration: "-1s" })]);
    // ... and not again once the sweep has recorded it.
    expect(await t.app.services.blocklist.sweepExpired()).toBeGreaterThanOrEqual(1);
    expect(await stream()).toEqual({ new: [], deleted: [] });
    void short;
  });

  it("HEAD answers 200 without moving the cursor", async () => {
    const created = await block("45.33.34.5");
    const head = await bouncer("/v1/decisions/stream", key, "HEAD");
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe("");
    expect((await stream()).new.map((d) => d.value)).toEqual(["45.33.34.5"]);
    await deactivate(created.id);
    const startup = await stream("?startup=true");
    expect(startup.deleted.map((d) => d.value)).toContain("45.33.34.5");
    expect(startup.new.map((d) => d.value)).not.toContain("45.33.34.5");
  });

  it("filters the stream by scopes and origins", async () => {
    const onlyIp = await stream("?startup=true&scopes=ip");
    expect(onlyIp.new.every((d) => d.scope === "Ip")).toBe(true);
    expect(onlyIp.new.length).toBeGreaterThan(0);
    expect((await stream("?startup=true&origins=cscli")).new).toEqual([]);
  });

  it("records the agent, last pull and address, and lists them for admins", async () => {
    await t.app.services.crowdsec.bouncers.flushPulls();
    const list = await t.app.inject({ method: "GET", url: "/crowdsec/bouncers", headers: t.auth() });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual([
      expect.objectContaining({ name: "edge-fw", agent_name: "crowdsec-firewall-bouncer", agent_version: "v0.0.25-debian", last_pull_at: clock.now().toISOString(), last_address: "127.0.0.1" }),
    ]);
  });

  it("deletes a bouncer: its key stops working at once, and both changes are audited", async () => {
    const created = await t.app.inject({ method: "POST", url: "/crowdsec/bouncers", headers: t.auth(), payload: { name: "nginx-1" } });
    const other = created.json().key as string;
    rememberSecret(other);
    expect((await bouncer("/v1/decisions?ip=45.33.34.5", other)).statusCode).toBe(200);
    const dup = await t.app.inject({ method: "POST", url: "/crowdsec/bouncers", headers: t.auth(), payload: { name: "NGINX-1" } });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().code).toBe("BOUNCER_EXISTS");
    const del = await t.app.inject({ method: "DELETE", url: "/crowdsec/bouncers/nginx-1", headers: t.auth() });
    expect(del.statusCode).toBe(200);
    expect((await bouncer("/v1/decisions?ip=45.33.34.5", other)).statusCode).toBe(403);
    const missing = await t.app.inject({ method: "DELETE", url: "/crowdsec/bouncers/nginx-1", headers: t.auth() });
    expect(missing.statusCode).toBe(404);
    const audit = (await t.app.inject({ method: "GET", url: `/audit/entries?target_type=crowdsec_bouncer&target_id=${created.json().id}`, headers: t.auth() })).json().items;
    expect(audit.map((e: { action: string }) => e.action)).toEqual(["crowdsec.bouncer.created", "crowdsec.bouncer.deleted"]);
    expect(JSON.stringify(audit)).not.toContain(other);
  });

  it("gives every pre-existing and new IP/CIDR block one decision id, and none to user blocks", async () => {
    const user = await t.app.inject({ method: "POST", url: "/security/policy/blocks", headers: t.auth(), payload: { entity_type: "user", value: "mallory" } });
    expect(user.statusCode).toBe(201);
    const counts = (await t.db.query<{ blocks: number; decisions: number }>(
      "SELECT (SELECT count(*)::int FROM blocked_entities WHERE entity_type IN ('ip','cidr')) AS blocks, (SELECT count(*)::int FROM crowdsec_decisions) AS decisions",
    ))[0]!;
    expect(counts.decisions).toBe(counts.blocks);
  });

  it("HEAD /v1/decisions checks the key and records no pull; GET records one", async () => {
    const created = await t.app.inject({ method: "POST", url: "/crowdsec/bouncers", headers: t.auth(), payload: { name: "head-only" } });
    const headKey = created.json().key as string;
    rememberSecret(headKey);
    const lastPull = async () => {
      await t.app.services.crowdsec.bouncers.flushPulls();
      const list = (await t.app.inject({ method: "GET", url: "/crowdsec/bouncers", headers: t.auth() })).json() as { name: string; last_pull_at: string | null }[];
      return list.find((b) => b.name === "head-only")!.last_pull_at;
    };
    const head = await bouncer("/v1/decisions?ip=45.33.34.5", headKey, "HEAD");
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe("");
    expect((await bouncer("/v1/decisions?ip=45.33.34.5", "not-a-key", "HEAD")).statusCode).toBe(403);
    expect(await lastPull()).toBeNull();
    expect((await bouncer("/v1/decisions?ip=45.33.34.5", headKey)).statusCode).toBe(200);
    expect(await lastPull()).toBe(clock.now().toISOString());
  });
});

describePostgres("CrowdSec stream: commit order", () => {
  let t: TestApp;
  let key: string;
  beforeAll(async () => {
    t = await createTestApp("postgres");
    const res = await t.app.inject({ method: "POST", url: "/crowdsec/bouncers", headers: t.auth(), payload: { name: "late-commit" } });
    key = res.json().key;
    rememberSecret(key);
  });
  afterAll(async () => t?.close());

  const pull = async (query = "") => {
    const res = await t.app.inject({ method: "GET", url: `/v1/decisions/stream${query}`, headers: { "x-api-key": key } });
    expect(res.statusCode).toBe(200);
    return res.json() as { new: { value: string }[]; deleted: { value: string }[] };
  };

  it("does not lose a block created before a pull but committed after a later block (two interleaved transactions)", async () => {
    await pull("?startup=true");
    const actor = systemActor("test");
    // T1 and T2 run on two connections. T1 inserts its block and stays open; T2 inserts another and
    // commits; the bouncer pulls (it sees T2's block); then T1 commits. T1 inserts the row directly
    // (not through the blocklist service) because the service's audit append would hold the audit
    // lock and make T2 wait for T1; the projection trigger fires all the same.
    let releaseT1!: () => void;
    const t1MayCommit = new Promise<void>((r) => (releaseT1 = r));
    let t1Inserted!: () => void;
    const t1HasInserted = new Promise<void>((r) => (t1Inserted = r));
    const t1 = t.db.transaction(async (tx) => {
      await tx.execute(sql`INSERT INTO blocked_entities (id, entity_type, value, reason, created_by, created_at)
                           VALUES (${randomUUID()}, 'ip', '45.33.40.1', 'late', 'test', now())`);
      t1Inserted();
      await t1MayCommit;
    });
    await t1HasInserted;
    // T2: a separate transaction on another connection, committed while T1 is open.
    await t.db.transaction(async (tx) => {
      await t.app.services.blocklist.createBlock(actor, { entity_type: "ip", value: "45.33.40.2", reason: "early", force: false }, tx);
    });
    const between = await pull();
    expect(between.new.map((d) => d.value)).toEqual(["45.33.40.2"]);
    releaseT1();
    await t1;
    // A cursor by time would now be past T1's created_at and skip its block for good.
    const [row] = await t.db.query<{ created_at: Date; stream_at: Date }>(
      "SELECT b.created_at, c.stream_at FROM blocked_entities b, crowdsec_bouncers c WHERE b.value = '45.33.40.1' AND c.name = 'late-commit'",
    );
    expect(row!.created_at.getTime()).toBeLessThan(row!.stream_at.getTime());
    // T1 committed after the pull that saw T2's block; its decision id is still above that cursor.
    const after = await pull();
    expect(after.new.map((d) => d.value)).toEqual(["45.33.40.1"]);
    expect(await pull()).toEqual({ new: [], deleted: [] });
    const all = (await pull("?startup=true")).new.map((d) => d.value).filter((v) => v.startsWith("45.33.40."));
    expect(all.sort()).toEqual(["45.33.40.1", "45.33.40.2"]);
  });

  it("serves the same decisions from a second node on the same database", async () => {
    const other = await buildApp({ config: testConfig(), db: t.db, logger: false });
    try {
      const actor = systemActor("test");
      await t.app.services.blocklist.createBlock(actor, { entity_type: "cidr", value: "45.33.41.0/24", reason: "node a", force: false });
      // node B learns of the block through NOTIFY (matcher) and the shared change sequence (mirror)
      let lookup: { value: string }[] | null = null;
      for (let i = 0; i < 50 && !lookup; i++) {
        const res = await other.inject({ method: "GET", url: "/v1/decisions?ip=45.33.41.9", headers: { "x-api-key": key } });
        lookup = res.json();
        if (!lookup) await new Promise((r) => setTimeout(r, 100));
      }
      expect(lookup).toEqual([expect.objectContaining({ value: "45.33.41.0/24", scope: "Range", origin: "portcullis", scenario: "node a" })]);
      // the cursor is shared too: a pull on node B continues where node A's pull left off
      const fromB = await other.inject({ method: "GET", url: "/v1/decisions/stream", headers: { "x-api-key": key } });
      expect((fromB.json() as { new: { value: string }[] }).new.map((d) => d.value)).toEqual(["45.33.41.0/24"]);
      expect(await pull()).toEqual({ new: [], deleted: [] });
      // deleting the bouncer on node A ends its key on node B at once (not after B's 10 s cache)
      expect((await t.app.inject({ method: "DELETE", url: "/crowdsec/bouncers/late-commit", headers: t.auth() })).statusCode).toBe(200);
      let status = 200;
      for (let i = 0; i < 30 && status === 200; i++) {
        status = (await other.inject({ method: "GET", url: "/v1/decisions?ip=45.33.41.9", headers: { "x-api-key": key } })).statusCode;
        if (status === 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(403);
    } finally {
      await other.close();
    }
  });
});
