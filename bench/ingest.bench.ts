// Telemetry ingestion (issue 7): events/s through the batch endpoint and single-event posts/s of a
// real listening server, on PostgreSQL and on PGlite, beside a raw COPY of the same rows into a copy
// of honeypot_events with the same indexes measured in the same run (the database's own limit for
// our schema). Events are real-shaped Cowrie events (the fixtures, varied: source address, session,
// port and time differ per event, so every event key is unique). The batch endpoint is measured with
// detection on and again, on a fresh server, with it off (detection.enabled=false), to show its cost.
// BENCH_INGEST_EVENTS (PostgreSQL, default 100,000), BENCH_INGEST_EVENTS_PGLITE (default 30,000),
// BENCH_INGEST_BATCH (events per request, default 1,000), BENCH_INGEST_SINGLE_SECONDS (default 5),
// BENCH_INGEST_ONLY=postgres|pglite, BENCH_INGEST_NODE_ARGS (extra node flags for the server).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { PGlite } from "@electric-sql/pglite";
import autocannon from "autocannon";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { createScratchDatabase } from "../test/helpers/scratch-db.ts";
import { loadMigrations } from "../src/db/migrate.ts";
import { openDatabase } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { cowrieEventType } from "../src/domains/sensors/adapters/cowrie.ts";
import { fromNative } from "../src/domains/sensors/adapters/native.ts";
import { eventKey } from "../src/domains/sensors/adapters/event-key.ts";
import { credentialVault, generateVaultKey } from "../src/domains/sensors/credentials.ts";
import { mulberry32 } from "../src/lib/prng.ts";
import { percentile, type BenchRow } from "./table.ts";

const ROOT = join(import.meta.dirname, "..");
const PG_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const N_PG = Number(process.env.BENCH_INGEST_EVENTS ?? 100_000);
const N_PGLITE = Number(process.env.BENCH_INGEST_EVENTS_PGLITE ?? 30_000);
const BATCH = Number(process.env.BENCH_INGEST_BATCH ?? 1_000);
const SENDERS = 4;
const SINGLE_SECONDS = Number(process.env.BENCH_INGEST_SINGLE_SECONDS ?? 5);
const SINGLE_CONNECTIONS = 16;
const TOKEN = "pc_bench-admin-token-0123456789abcdefghijklmn";
const DETECTION_ON_MAIN = existsSync(join(ROOT, "src/domains/detection"));
const DETECTION = DETECTION_ON_MAIN ? "detection on" : "no detection on main yet";

// ------------------------------------------------------------------ the events

const FIXTURES = join(ROOT, "../shared/fixtures/cowrie");
const templates: Record<string, unknown>[] = readdirSync(FIXTURES)
  .sort()
  .flatMap((f) => readFileSync(join(FIXTURES, f), "utf8").split("\n"))
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l) as Record<string, unknown>);

const hex12 = (rand: () => number) => Math.floor(rand() * 0xffffffffffff).toString(16).padStart(12, "0");

/**
 * Event i in the seed's native contract, built from fixture line i mod 1792: the attacker address
 * changes every 8 events (so per-source counters see sessions, not one address), the session id,
 * source port and time change every event. Passwords stay in the payload: the server seals them.
 */
const makeEvent = (i: number, run: number, baseTime: number): string => {
  const rand = mulberry32(i * 7919 + run);
  const tpl = templates[i % templates.length]!;
  const host = Math.floor(i / 8) + run * 50_000_000;
  const ip = `${11 + ((host >>> 24) & 63)}.${(host >>> 16) & 255}.${(host >>> 8) & 255}.${host & 255}`;
  const timestamp = new Date(baseTime + i).toISOString();
  const { src_ip: _ip, timestamp: _ts, ...rest } = tpl;
  const payload: Record<string, unknown> = { ...rest, session: hex12(rand) };
  if (typeof tpl.src_port === "number") payload.src_port = 1024 + Math.floor(rand() * 60_000);
  if (typeof tpl.message === "string") payload.message = tpl.message.replaceAll(String(tpl.src_ip), ip);
  return JSON.stringify({ source_ip: ip, event_type: cowrieEventType(String(tpl.eventid)), occurred_at: timestamp, payload });
};

// ------------------------------------------------------------------ the COPY reference

const COLUMNS = "event_key, sensor_id, source_ip, event_type, detected_threat, occurred_at, received_at, payload, raw, secrets, secrets_key_id";
const copyText = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
const copyBytes = (b: Buffer | null) => (b ? `\\\\x${b.toString("hex")}` : "\\N");

/** COPY text lines of exactly what the server stores for these events (same adapter, key and sealing). */
const copyLines = (events: string[], sensorId: string): string[] => {
  const vault = credentialVault({ mode: "encrypted", keys: [generateVaultKey("bench")] });
  const now = new Date();
  return events.map((text) => {
    const r = fromNative(JSON.parse(text), text, now);
    if (!r.ok) throw new Error(`bench event rejected: ${r.reason}`);
    const ev = r.event;
    const sealed = vault.seal(ev.secrets);
    return [
      copyBytes(eventKey(sensorId, ev)),
      sensorId,
      ev.sourceIp,
      ev.eventType,
      ev.detectedThreat === null ? "\\N" : copyText(ev.detectedThreat),
      (ev.occurredAt ?? now).toISOString(),
      now.toISOString(),
      copyText(JSON.stringify(ev.payload)),
      copyText(ev.raw),
      copyBytes(sealed?.ciphertext ?? null),
      sealed ? sealed.keyId : "\\N",
    ].join("\t") + "\n";
  });
};

const SENSOR_ID = "0190a0b0-0000-7000-8000-0000000be7c4";
const COPY_TABLE = "CREATE SCHEMA bench; CREATE TABLE bench.honeypot_events (LIKE public.honeypot_events INCLUDING ALL)";

const copyPostgres = async (url: string, lines: string[]): Promise<number> => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(COPY_TABLE);
    const t0 = process.hrtime.bigint();
    await client.query("BEGIN");
    const stream = client.query(copyFrom(`COPY bench.honeypot_events (${COLUMNS}) FROM STDIN`));
    const chunks = function* () {
      for (let i = 0; i < lines.length; i += 1000) yield lines.slice(i, i + 1000).join("");
    };
    await pipeline(Readable.from(chunks()), stream);
    await client.query("COMMIT");
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const [row] = (await client.query<{ n: number }>("SELECT count(*)::int AS n FROM bench.honeypot_events")).rows;
    if (row?.n !== lines.length) throw new Error(`COPY stored ${row?.n} of ${lines.length} rows`);
    return lines.length / seconds;
  } finally {
    await client.end();
  }
};

const copyPglite = async (dir: string, lines: string[]): Promise<number> => {
  const client = await PGlite.create(`${dir}/pgdata`);
  try {
    for (const m of loadMigrations()) await client.exec(m.sql);
    await client.exec(COPY_TABLE);
    const blob = new Blob([lines.join("")]);
    const t0 = process.hrtime.bigint();
    await client.transaction(async (tx) => {
      await tx.query(`COPY bench.honeypot_events (${COLUMNS}) FROM '/dev/blob'`, [], { blob });
    });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const [row] = (await client.query<{ n: number }>("SELECT count(*)::int AS n FROM bench.honeypot_events")).rows;
    if (row?.n !== lines.length) throw new Error(`COPY stored ${row?.n} of ${lines.length} rows`);
    return lines.length / seconds;
  } finally {
    await client.close();
  }
};

// ------------------------------------------------------------------ the server

/** Resolves with the first match of `pattern` in the child's output. */
const waitFor = (child: ChildProcess, pattern: RegExp) =>
  new Promise<RegExpExecArray>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += String(d);
      const m = pattern.exec(out);
      if (m) resolve(m);
    });
    child.stderr!.on("data", (d) => (out += String(d)));
    child.on("exit", (code) => reject(new Error(`server exited ${code}: ${out.slice(-2000)}`)));
  });

// Port 0: the OS picks a free one (parallel bench runs must not collide); the URL comes from the log line.
const startServer = async (dataDir: string, databaseUrl: string | undefined, detection: boolean) => {
  // BENCH_INGEST_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server.
  const nodeArgs = (process.env.BENCH_INGEST_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(ROOT, "bin/portcullis.mjs"), "serve"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORTCULLIS_PORT: "0",
      PORTCULLIS_DATA_DIR: dataDir,
      PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN: TOKEN,
      PORTCULLIS_LOG__LEVEL: "warn",
      PORTCULLIS_RATE_LIMIT__MANAGEMENT_PER_MINUTE: "100000000",
      PORTCULLIS_RATE_LIMIT__INGEST_PER_MINUTE: "100000000",
      PORTCULLIS_DETECTION__ENABLED: String(detection),
      ...(databaseUrl ? { PORTCULLIS_DATABASE_URL: databaseUrl } : {}),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const base = (await waitFor(child, /listening on (http:\/\/[^\s]+)/))[1]!.replace(/\/$/, "");
  const res = await fetch(`${base}/security/honeypot/instances`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: `bench-cowrie-${Date.now()}`, honeypot_type: "cowrie" }),
  });
  if (res.status !== 201) throw new Error(`creating the bench sensor: ${res.status} ${await res.text()}`);
  const { api_key: key } = (await res.json()) as { api_key: string };
  return { child, base, key };
};

const stopServer = async (child: ChildProcess) => {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
};

/** SENDERS concurrent senders post the batches; every event must come back accepted. */
const postBatches = async (base: string, key: string, events: string[]) => {
  const bodies: string[] = [];
  for (let i = 0; i < events.length; i += BATCH) bodies.push(`[${events.slice(i, i + BATCH).join(",")}]`);
  const perEventNs: number[] = [];
  let next = 0;
  let accepted = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: SENDERS }, async () => {
      for (let b = next++; b < bodies.length; b = next++) {
        const s = process.hrtime.bigint();
        const res = await fetch(`${base}/security/honeypot/events/batch`, { method: "POST", headers: { "x-honeypot-key": key, "content-type": "application/json" }, body: bodies[b] });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`batch answered ${res.status}: ${text.slice(0, 500)}`);
        const result = JSON.parse(text) as { total: number; accepted: number };
        accepted += result.accepted;
        perEventNs.push(Number(process.hrtime.bigint() - s) / result.total);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (accepted !== events.length) throw new Error(`only ${accepted} of ${events.length} events accepted`);
  perEventNs.sort((a, b) => a - b);
  return { rate: events.length / seconds, p50: percentile(perEventNs, 0.5), p99: percentile(perEventNs, 0.99) };
};

/** Single-event posts for SINGLE_SECONDS, each a new event (autocannon rewrites the body per request). */
const postSingles = (base: string, key: string, offset: number, run: number, baseTime: number) =>
  new Promise<autocannon.Result>((resolve, reject) => {
    let i = offset;
    autocannon(
      {
        url: `${base}/security/honeypot/events`,
        connections: SINGLE_CONNECTIONS,
        duration: SINGLE_SECONDS,
        requests: [
          {
            method: "POST",
            headers: { "x-honeypot-key": key, "content-type": "application/json" },
            setupRequest: (req) => ({ ...req, body: makeEvent(i++, run, baseTime) }),
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });

/** What detection made of the run (each address sends a run of real Cowrie lines), from the dashboard. */
const reportDetection = async (base: string, label: string, when: string) => {
  const dash = await fetch(`${base}/security/dashboard`, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (dash.status !== 200) return;
  const d = (await dash.json()) as { incidents?: { total_open?: number }; action_requests?: { total_pending?: number } };
  process.stdout.write(`ingest bench (${label}): ${when}: ${d.incidents?.total_open ?? "?"} open incidents, ${d.action_requests?.total_pending ?? "?"} pending action requests\n`);
};

type StartServer = (detection: boolean) => Promise<{ child: ChildProcess; base: string; key: string }>;

const measureBackend = async (label: string, n: number, run: number, copy: (lines: string[]) => Promise<number>, server: StartServer): Promise<BenchRow[]> => {
  // Recent times (detection windows count back from now), 1 ms apart: 100,000 events span 100 s.
  const baseTime = Date.now() - 120_000;
  const events = Array.from({ length: n }, (_, i) => makeEvent(i, run, baseTime));
  const copyRate = await copy(copyLines(events, SENSOR_ID));
  const reference = `COPY into honeypot_events copy (${label})`;
  const rows: BenchRow[] = [{ operation: reference, n, opsPerSec: copyRate, p50Ns: Number.NaN, p99Ns: Number.NaN }];
  const warmup = Array.from({ length: 2 * BATCH }, (_, i) => makeEvent(n + i, run, baseTime));
  for (const detection of DETECTION_ON_MAIN ? [true, false] : [false]) {
    const what = DETECTION_ON_MAIN ? (detection ? "detection on" : "detection off") : DETECTION;
    const { child, base, key } = await server(detection);
    try {
      // Warm-up: the first requests compile the routes' code paths (not counted).
      await postBatches(base, key, warmup);
      const batch = await postBatches(base, key, events);
      rows.push({ operation: `batch endpoint, ${BATCH}/request, ${SENDERS} senders (${label}, ${what})`, n, opsPerSec: batch.rate, p50Ns: batch.p50, p99Ns: batch.p99, reference, ratio: batch.rate / copyRate });
      if (detection) await reportDetection(base, label, "right after the batches");
      if (detection || !DETECTION_ON_MAIN) {
        const single = await postSingles(base, key, n + 2 * BATCH, run, baseTime);
        if (single.non2xx > 0 || single.errors > 0) throw new Error(`single posts: ${single.non2xx} non-2xx answers, ${single.errors} errors`);
        rows.push({
          operation: `single-event posts, ${SINGLE_CONNECTIONS} connections (${label}, ${what})`,
          n: single.requests.total,
          opsPerSec: single.requests.average,
          p50Ns: single.latency.p50 > 0 ? single.latency.p50 * 1e6 : Number.NaN,
          p99Ns: single.latency.p99 > 0 ? single.latency.p99 * 1e6 : Number.NaN,
          reference,
          ratio: single.requests.average / copyRate,
        });
        if (detection) await reportDetection(base, label, `after the single posts too (${SINGLE_SECONDS} s later)`);
      }
    } finally {
      await stopServer(child);
    }
  }
  return rows;
};

export async function runIngestBench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), "portcullis-ingest-bench-"));
    dirs.push(d);
    return d;
  };
  try {
    const copyDb = await createScratchDatabase(PG_URL, "pc_bench").catch((error: unknown) => {
      process.stderr.write(`ingest bench: PostgreSQL at ${PG_URL} unavailable (${(error as Error).message}); PostgreSQL rows skipped\n`);
      return undefined;
    });
    if (copyDb && process.env.BENCH_INGEST_ONLY === "pglite") await copyDb.drop();
    else if (copyDb) {
      const serverDbs: Awaited<ReturnType<typeof createScratchDatabase>>[] = [];
      try {
        const db = await openDatabase({ databaseUrl: copyDb.url, poolSize: 1 });
        await migrate(db);
        await db.close();
        // Each server run gets a fresh database (the same events would all be duplicates otherwise).
        const server = async (detection: boolean) => {
          const scratch = await createScratchDatabase(PG_URL, "pc_bench");
          serverDbs.push(scratch);
          return startServer(tmp(), scratch.url, detection);
        };
        rows.push(...(await measureBackend("PostgreSQL", N_PG, 1, (lines) => copyPostgres(copyDb.url, lines), server)));
      } finally {
        await copyDb.drop();
        for (const scratch of serverDbs) await scratch.drop();
      }
    }
    if (process.env.BENCH_INGEST_ONLY !== "postgres") rows.push(...(await measureBackend("PGlite", N_PGLITE, 2, (lines) => copyPglite(tmp(), lines), (detection) => startServer(tmp(), undefined, detection))));
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  return rows;
}
