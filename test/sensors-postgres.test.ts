// Ingestion under real concurrency and a real crash, on PostgreSQL: ten senders posting
// overlapping batches at once (no duplicates, nothing missing, no deadlock), and a server process
// killed with SIGKILL in the middle of a stream of batches (every acknowledged event is there after
// the restart; resending what was not acknowledged completes the set).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildApp } from "../src/app/build.ts";
import { createTestApp, describePostgres, testConfig, type TestApp } from "./helpers/harness.ts";
import { createScratchDatabase } from "./helpers/scratch-db.ts";
import { freePort, ROOT } from "./helpers/cli.ts";
import { rememberSecret } from "./helpers/secret-scan.ts";

type Json = Record<string, any>;

/** Fisher–Yates with a fixed seed, so a failure can be replayed. */
const shuffled = <T>(items: T[], seed: number): T[] => {
  const out = [...items];
  let s = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
};

describePostgres("sensor ingestion with ten parallel senders on postgres", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp("postgres");
  });
  afterAll(async () => t?.close());

  it("stores every event exactly once when ten senders post overlapping batches at the same time", async () => {
    const created = await t.app.inject({ method: "POST", url: "/security/honeypot/instances", headers: t.auth(), payload: { name: "parallel", honeypot_type: "custom" } });
    const key = created.json().api_key as string;
    rememberSecret(key);
    // 3,000 distinct events; every sender posts an overlapping 1,200 of them (400 shared with each
    // neighbour), in its own order, in batches of 200; half of them with an event_id, half keyed by their bytes.
    const events = Array.from({ length: 3_000 }, (_, i) =>
      JSON.stringify(i % 2 ? { source_ip: `198.51.100.${i % 200}`, event_type: "scan", event_id: `p-${i}`, payload: { seq: i } } : { source_ip: `198.51.100.${i % 200}`, event_type: "scan", payload: { seq: i } }),
    );
    const senders = Array.from({ length: 10 }, (_, s) => shuffled(Array.from({ length: 1_200 }, (_, j) => (s * 300 + j) % 3_000), s + 1));
    const answers = await Promise.all(
      senders.map(async (indexes) => {
        const seen: { index: number; status: string; id: string }[] = [];
        for (let b = 0; b < indexes.length; b += 200) {
          const slice = indexes.slice(b, b + 200);
          const res = await t.app.inject({
            method: "POST",
            url: "/security/honeypot/events/batch",
            headers: { "x-honeypot-key": key, "content-type": b % 400 ? "application/x-ndjson" : "application/json" },
            payload: b % 400 ? slice.map((i) => events[i]).join("\n") : `[${slice.map((i) => events[i]).join(",")}]`,
          });
          expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
          const body = res.json() as Json;
          expect(body.rejected).toBe(0);
          body.results.forEach((r: Json, k: number) => seen.push({ index: slice[k]!, status: r.status, id: r.id }));
        }
        return seen;
      }),
    );
    const all = answers.flat();
    // Exactly one acceptance per distinct event; every answer for an event names the same stored row.
    const accepted = all.filter((a) => a.status === "accepted");
    expect(accepted).toHaveLength(3_000);
    expect(new Set(accepted.map((a) => a.index)).size).toBe(3_000);
    const idOf = new Map(accepted.map((a) => [a.index, a.id]));
    for (const a of all) expect(a.id, `event ${a.index}`).toBe(idOf.get(a.index));
    const rows = await t.db.query<{ seq: string; n: string }>("SELECT payload->>'seq' AS seq, count(*) AS n FROM honeypot_events GROUP BY 1");
    expect(rows).toHaveLength(3_000);
    expect(rows.every((r) => Number(r.n) === 1)).toBe(true);
    // The rollups count each stored event once.
    const [rollup] = await t.db.query<{ n: string }>("SELECT sum(events) AS n FROM telemetry_rollups");
    expect(Number(rollup!.n)).toBe(3_000);
  });
});

describePostgres("sensor keys across nodes on postgres", () => {
  let node1: TestApp;
  let node2: FastifyInstance;
  beforeAll(async () => {
    node1 = await createTestApp("postgres");
    node2 = await buildApp({ config: testConfig(), db: node1.db, logger: false });
  });
  afterAll(async () => {
    await node2?.close();
    await node1?.close();
  });

  // Well under the 5 s cache lifetime: passing proves the change was pushed (NOTIFY), not waited out.
  const within = async (ms: number, fn: () => Promise<boolean>) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await fn()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return fn();
  };
  const postOn = (app: FastifyInstance, key: string, n: number) =>
    app.inject({ method: "POST", url: "/security/honeypot/events", headers: { "x-honeypot-key": key, "content-type": "application/json" }, payload: { source_ip: "192.0.2.77", event_type: "scan", event_id: `n-${n}` } });

  it("a sensor deactivated on node 1 is refused on node 2 at once, and a rotation with no grace likewise", async () => {
    const created = await node1.app.inject({ method: "POST", url: "/security/honeypot/instances", headers: node1.auth(), payload: { name: "roaming", honeypot_type: "custom" } });
    const { id, api_key: key } = created.json() as { id: string; api_key: string };
    rememberSecret(key);
    // node 2 has the key cached now.
    expect((await postOn(node2, key, 1)).statusCode).toBe(201);
    const rotated = await node1.app.inject({ method: "POST", url: `/security/honeypot/instances/${id}/rotate-key`, headers: node1.auth(), payload: { grace_seconds: 0 } });
    const newKey = rotated.json().api_key as string;
    rememberSecret(newKey);
    expect(await within(2_000, async () => (await postOn(node2, key, 2)).statusCode === 401)).toBe(true);
    expect((await postOn(node2, key, 3)).json().code).toBe("SENSOR_KEY_EXPIRED");
    expect((await postOn(node2, newKey, 4)).statusCode).toBe(201);
    expect((await node1.app.inject({ method: "POST", url: `/security/honeypot/instances/${id}/deactivate`, headers: node1.auth() })).statusCode).toBe(200);
    expect(await within(2_000, async () => (await postOn(node2, newKey, 5)).statusCode === 403)).toBe(true);
    expect((await postOn(node2, newKey, 6)).json().code).toBe("SENSOR_DEACTIVATED");
  });
});

describePostgres("sensor ingestion across a server crash on postgres", () => {
  let dataDir: string;
  let scratch: { url: string; drop(): Promise<void> };
  const token = "pc_crash-test-admin-token-0123456789abcdef";
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "portcullis-crash-"));
    scratch = await createScratchDatabase(process.env.PORTCULLIS_TEST_DATABASE_URL!, "pc_sensor_crash");
    rememberSecret(token);
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await scratch?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The server itself (not npm), so SIGKILL reaches the process that holds the connections. */
  const start = async () => {
    const port = await freePort();
    let out = "";
    const child = spawn(process.execPath, [join(ROOT, "bin/portcullis.mjs"), "serve"], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORTCULLIS_LOG__LEVEL: "warn",
        PORTCULLIS_PORT: String(port),
        PORTCULLIS_DATA_DIR: dataDir,
        PORTCULLIS_DATABASE_URL: scratch.url,
        PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN: token,
        PORTCULLIS_RATE_LIMIT__ENABLED: "false",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    child.stdout!.on("data", (d) => (out += String(d)));
    child.stderr!.on("data", (d) => (out += String(d)));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`server exited early:\n${out}`);
      try {
        if ((await fetch(`${url}/readyz`)).ok && out.includes("listening on")) return { child, url, output: () => out };
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`server not ready in time:\n${out}`);
  };

  it("keeps every acknowledged event when the server is killed mid-stream", async () => {
    let server = await start();
    const created = await fetch(`${server.url}/security/honeypot/instances`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "crash-sensor", honeypot_type: "cowrie" }),
    });
    expect(created.status).toBe(201);
    const key = ((await created.json()) as Json).api_key as string;
    rememberSecret(key);

    const batchOf = (b: number) => Array.from({ length: 250 }, (_, i) => ({ source_ip: `203.0.113.${(b + i) % 250}`, event_type: "auth_attempt", event_id: `c-${b}-${i}`, payload: { seq: `${b}-${i}` } }));
    const acknowledged = new Set<string>();
    const unacknowledged: number[] = [];
    let next = 0;
    let killed = false;
    // Three streams of batches; the kill lands while requests are in flight.
    const stream = async () => {
      while (!killed) {
        const b = next++;
        try {
          const res = await fetch(`${server.url}/security/honeypot/events/batch`, {
            method: "POST",
            headers: { "x-honeypot-key": key, "content-type": "application/json" },
            body: JSON.stringify(batchOf(b)),
          });
          const body = (await res.json()) as Json;
          if (res.status !== 200 || body.accepted + body.duplicate !== 250) throw new Error(`batch ${b}: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
          for (const item of batchOf(b)) acknowledged.add(item.payload.seq);
        } catch (error) {
          if (!killed) throw error;
          unacknowledged.push(b);
          return;
        }
      }
    };
    const streams = [stream(), stream(), stream()];
    while (acknowledged.size < 250 * 12) await new Promise((r) => setTimeout(r, 20));
    killed = true;
    server.child.kill("SIGKILL");
    await Promise.all(streams);
    expect(unacknowledged.length, "batches in flight when the server died").toBeGreaterThan(0);
    expect(server.child.signalCode ?? (await new Promise((r) => server.child.once("exit", (_c, s) => r(s))))).toBe("SIGKILL");

    server = await start();
    const db = new pg.Client({ connectionString: scratch.url });
    await db.connect();
    try {
      const stored = new Set((await db.query<{ seq: string }>("SELECT payload->>'seq' AS seq FROM honeypot_events")).rows.map((r) => r.seq));
      const missing = [...acknowledged].filter((s) => !stored.has(s));
      expect(missing).toEqual([]);
      // What was in flight is resent as a sender would: stored once, whatever made it before the kill.
      for (const b of unacknowledged) {
        const res = await fetch(`${server.url}/security/honeypot/events/batch`, {
          method: "POST",
          headers: { "x-honeypot-key": key, "content-type": "application/json" },
          body: JSON.stringify(batchOf(b)),
        });
        const body = (await res.json()) as Json;
        expect(res.status).toBe(200);
        expect(body.accepted + body.duplicate).toBe(250);
      }
      const [{ n, d }] = (await db.query<{ n: string; d: string }>("SELECT count(*) AS n, count(DISTINCT payload->>'seq') AS d FROM honeypot_events")).rows as [{ n: string; d: string }];
      expect(Number(n)).toBe(Number(d));
      expect(Number(n)).toBe(acknowledged.size + unacknowledged.length * 250);
    } finally {
      await db.end();
      server.child.kill("SIGTERM");
      await new Promise((r) => (server.child.exitCode !== null ? r(null) : server.child.once("exit", r)));
    }
  }, 240_000);
});
