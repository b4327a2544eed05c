// Rules on PostgreSQL with real concurrency: activations forced to overlap (both held at the same
// row lock, then released together) leave exactly one ACTIVE version, and a second node built on
// the same database learns about an activation through LISTEN/NOTIFY.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, DB_KINDS, testConfig, type TestApp } from "./helpers/harness.ts";
import { openDatabase, type Database } from "../src/db/client.ts";
import { buildApp } from "../src/app/build.ts";
import type { FastifyInstance } from "fastify";

// Without PORTCULLIS_TEST_DATABASE_URL there is no PostgreSQL here; the suite then reports one skipped test.
const kinds = DB_KINDS.filter((k) => k === "postgres");

/** Polls `check` until it is true (or throws after `ms`); used to wait for other connections, never to time anything. */
const waitFor = async (check: () => Promise<boolean> | boolean, what: string, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe.skipIf(kinds.length === 0).each(kinds.length ? kinds : (["postgres"] as const))("rules concurrency on %s", (kind) => {
  let t: TestApp;
  let analyst: { token: string };
  let analyst2: { token: string };
  let approver: { token: string };
  beforeAll(async () => {
    t = await createTestApp(kind);
    analyst = await createKeyForRole(t.db, "analyst");
    analyst2 = await createKeyForRole(t.db, "analyst");
    approver = await createKeyForRole(t.db, "approver");
  });
  afterAll(async () => t?.close());

  const req = (method: "GET" | "POST", url: string, payload?: unknown, token?: string) =>
    t.app.inject({ method, url, headers: t.auth(token), ...(payload !== undefined ? { payload: payload as object } : {}) });

  const approvedVersion = async (name: string, priority: number) => {
    const created = await req("POST", "/rules", { name, target: "action_request", when: { op: "eq", field: "action.type", value: "block_entity" }, outcome: "ALLOW", priority }, analyst.token);
    expect(created.statusCode, created.body).toBe(201);
    const version = created.json().version as number;
    expect((await req("POST", `/rules/${name}/versions/${version}/submit`, undefined, analyst.token)).statusCode).toBe(200);
    expect((await req("POST", `/rules/${name}/versions/${version}/review`, { decision: "approve", comment: "ok" }, approver.token)).statusCode).toBe(200);
    return version;
  };

  const activeVersions = async (name: string) =>
    (await t.db.query<{ version: number }>("SELECT version FROM rules WHERE name = $1 AND status = 'ACTIVE'", [name])).map((r) => r.version);

  /** Holds a row lock on the active version so activations queue behind it, then releases them together. */
  const withActiveRowLocked = async (name: string, whileLocked: () => Promise<void>) => {
    const blocker = new pg.Client({ connectionString: t.db.url });
    await blocker.connect();
    try {
      await blocker.query("BEGIN");
      await blocker.query("SELECT id FROM rules WHERE name = $1 AND status = 'ACTIVE' FOR UPDATE", [name]);
      await whileLocked();
      await blocker.query("COMMIT");
    } finally {
      await blocker.end();
    }
  };

  const waitingOnLocks = async () =>
    Number((await t.db.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))[0]!.n);

  it("two versions activated at the same moment: exactly one wins, the other gets 409", async () => {
    const name = "pg-race-two-versions";
    const v1 = await approvedVersion(name, 101);
    expect((await req("POST", `/rules/${name}/versions/${v1}/activate`, undefined, analyst.token)).statusCode).toBe(200);
    const v2 = await approvedVersion(name, 102);
    const v3 = await approvedVersion(name, 103);
    let pending: Promise<Awaited<ReturnType<typeof req>>[]> | undefined;
    await withActiveRowLocked(name, async () => {
      pending = Promise.all([
        req("POST", `/rules/${name}/versions/${v2}/activate`, undefined, analyst.token),
        req("POST", `/rules/${name}/versions/${v3}/activate`, undefined, analyst2.token),
      ]);
      // Both activations are inside their transactions, queued on the same row: real overlap.
      await waitFor(async () => (await waitingOnLocks()) >= 2, "both activations to wait on the lock");
    });
    const results = await pending!;
    const codes = results.map((r) => r.statusCode).sort();
    expect(codes).toEqual([200, 409]);
    const loser = results.find((r) => r.statusCode === 409)!;
    expect(loser.json().code).toBe("RULE_ACTIVATION_CONFLICT");
    expect(await activeVersions(name)).toHaveLength(1);
    const winner = results.find((r) => r.statusCode === 200)!.json().version;
    expect(await activeVersions(name)).toEqual([winner]);
    // The loser changed nothing: its version is still approved and waiting, v1 retired once.
    const rows = await t.db.query<{ version: number; status: string }>("SELECT version, status FROM rules WHERE name = $1 ORDER BY version", [name]);
    expect(rows.map((r) => r.status).sort()).toEqual(["ACTIVE", "RETIRED", "REVIEW"]);
    const retiredEntries = (await req("GET", `/audit/entries?target_type=rule&target_id=${name}&action=rules.version.retired`)).json().items;
    expect(retiredEntries).toHaveLength(1);
  });

  it("the same version activated twice at once: one 200, one 409", async () => {
    const name = "pg-race-same-version";
    const v1 = await approvedVersion(name, 101);
    expect((await req("POST", `/rules/${name}/versions/${v1}/activate`, undefined, analyst.token)).statusCode).toBe(200);
    const v2 = await approvedVersion(name, 102);
    let pending: Promise<Awaited<ReturnType<typeof req>>[]> | undefined;
    await withActiveRowLocked(name, async () => {
      pending = Promise.all([0, 1].map(() => req("POST", `/rules/${name}/versions/${v2}/activate`, undefined, analyst.token)));
      await waitFor(async () => (await waitingOnLocks()) >= 2, "both activations to wait on the lock");
    });
    const results = await pending!;
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    expect(results.find((r) => r.statusCode === 409)!.json().code).toMatch(/^RULE_(STATUS|ACTIVATION)_CONFLICT$/);
    expect(await activeVersions(name)).toEqual([v2]);
  });

  it("unsynchronised bursts of activations never leave two ACTIVE versions", async () => {
    const name = "pg-race-burst";
    const versions: number[] = [];
    for (let i = 0; i < 4; i++) versions.push(await approvedVersion(name, 100 + i));
    const results = await Promise.all(versions.map((v, i) => req("POST", `/rules/${name}/versions/${v}/activate`, undefined, i % 2 ? analyst.token : analyst2.token)));
    expect(results.filter((r) => r.statusCode === 200).length).toBeGreaterThanOrEqual(1);
    for (const r of results) expect([200, 409]).toContain(r.statusCode);
    expect(await activeVersions(name)).toHaveLength(1);
  });

  describe("a second node on the same database", () => {
    let db2: Database;
    let app2: FastifyInstance;
    beforeAll(async () => {
      db2 = await openDatabase({ databaseUrl: t.db.url!, poolSize: 4 });
      app2 = await buildApp({ config: testConfig(), db: db2, logger: false });
    });
    afterAll(async () => {
      await app2?.close();
      await db2?.close();
    });

    it("follows activations and retirements made on the first node", async () => {
      const name = "pg-two-nodes";
      const input = { target: "action_request", input: { action: { type: "block_entity" }, entity: { type: "ip", ip: "5.188.86.172" } } };
      const matchedOn2 = async () =>
        ((await app2.inject({ method: "POST", url: "/rules/evaluate", headers: t.auth(), payload: input })).json().matched as { name: string }[]).some((m) => m.name === name);
      expect(await matchedOn2()).toBe(false);
      const v = await approvedVersion(name, 900);
      expect((await req("POST", `/rules/${name}/versions/${v}/activate`, undefined, analyst.token)).statusCode).toBe(200);
      await waitFor(matchedOn2, "the second node to load the activated rule");
      expect((await req("POST", `/rules/${name}/versions/${v}/retire`, {}, analyst.token)).statusCode).toBe(200);
      await waitFor(async () => !(await matchedOn2()), "the second node to drop the retired rule");
    });
  });
});
