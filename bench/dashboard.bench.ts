// Dashboard latency with a large telemetry store (issue 7's target: p95 <= 50 ms with 10M events).
// Fills a PostgreSQL scratch database by server-side SQL (generate_series) with real-shaped Cowrie
// events spread over 30 days, their per-minute rollups, blocks, incidents and pending requests, then
// measures GET /security/dashboard over real HTTP, one request at a time. References in the same
// run: GET /healthz over the same HTTP path, and the dashboard's own SQL sent directly.
// BENCH_DASHBOARD_EVENTS sets the number of events (default 10,000,000); BENCH_DATABASE_URL the server.
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { benchConfig } from "./config.ts";
import { openDatabase, type Database } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { buildApp } from "../src/app/build.ts";
import { createScratchDatabase } from "../test/helpers/scratch-db.ts";
import { percentile, type BenchRow } from "./table.ts";

const PG_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const EVENTS = Number(process.env.BENCH_DASHBOARD_EVENTS ?? 10_000_000);
const CHUNK = 500_000;
const REQUESTS = Number(process.env.BENCH_DASHBOARD_REQUESTS ?? 1_000);
const ADMIN = "pc_bench-dashboard-admin-token-0123456789";
const SENSORS = 8;

const say = (line: string) => process.stderr.write(`[dashboard bench] ${line}\n`);

/** Cowrie's login.failed as stored by the adapter (normalised payload) and its raw line. */
const FILL_SQL = `
INSERT INTO honeypot_events (event_key, sensor_id, source_ip, event_type, detected_threat, occurred_at, received_at, payload, raw)
SELECT
  decode(md5('bench-event-' || g), 'hex'),
  ($1::uuid[])[1 + g % ${SENSORS}],
  ip,
  kind,
  CASE WHEN g % 40 = 0 THEN 'brute_force' WHEN kind = 'command' THEN 'command_execution' END,
  at, at,
  jsonb_build_object(
    'sensor_event', CASE kind WHEN 'auth_attempt' THEN 'cowrie.login.failed' WHEN 'connection' THEN 'cowrie.session.connect' WHEN 'command' THEN 'cowrie.command.input' ELSE 'cowrie.session.closed' END,
    'protocol', 'ssh', 'src_port', 30000 + g % 30000, 'dst_ip', '172.17.0.3', 'dst_port', 2222,
    'session', substr(md5(g::text), 1, 12),
    'username', (ARRAY['root','admin','ubnt','pi','test','oracle','user','support'])[1 + g % 8],
    'outcome', 'failed',
    'message', 'login attempt [' || (ARRAY['root','admin','ubnt','pi','test','oracle','user','support'])[1 + g % 8] || '/[redacted]] failed'),
  '{"eventid": "cowrie.login.failed", "username": "' || (ARRAY['root','admin','ubnt','pi','test','oracle','user','support'])[1 + g % 8] ||
    '", "timestamp": "' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '", "message": "login attempt failed", "system": "SSHService ssh-userauth on HoneyPotSSHTransport,' ||
    g % 5000 || ',' || ip || '", "isError": 0, "src_ip": "' || ip || '", "session": "' || substr(md5(g::text), 1, 12) || '", "password": "[redacted]", "sensor": "bench-' || g % ${SENSORS} || '"}'
FROM generate_series($2::bigint, $3::bigint) AS g,
  LATERAL (SELECT
    -- 30 days ending now, in id order (ids grow with receipt, as with real ingestion).
    now() - (($4::bigint - g)::float8 / $4::bigint) * interval '30 days' AS at,
    -- about 200,000 distinct sources, a few very busy ones.
    CASE WHEN g % 10 < 3 THEN '185.222.209.' || (g % 50) ELSE ((g * 7919) % 200 + 20) || '.' || ((g * 31) % 250) || '.' || ((g * 17) % 250) || '.' || (g % 200 + 1) END AS ip,
    (ARRAY['auth_attempt','auth_attempt','auth_attempt','auth_attempt','connection','connection','session','command'])[1 + g % 8] AS kind
  ) AS x`;

const ROLLUP_SQL = `
INSERT INTO telemetry_rollups (bucket, sensor_id, events, threats)
SELECT date_trunc('minute', received_at), sensor_id, count(*), count(detected_threat)
FROM honeypot_events WHERE id > $1::bigint AND id <= $2::bigint
GROUP BY 1, 2
ON CONFLICT (bucket, sensor_id) DO UPDATE SET events = telemetry_rollups.events + excluded.events, threats = telemetry_rollups.threats + excluded.threats`;

/** The dashboard's statements, sent directly (what the database alone costs per snapshot). */
const dashboardSql = async (db: Database) => {
  const dayAgo = new Date(Date.now() - 86_400_000).toISOString();
  await Promise.all([
    db.query("SELECT * FROM security_policy LIMIT 1"),
    db.query("SELECT severity, count(*)::int, max(updated_at) FROM incidents WHERE status = 'open' GROUP BY severity"),
    db.query(
      `SELECT (SELECT count(*) FROM honeypot_instances), (SELECT count(*) FROM honeypot_instances WHERE active),
        (SELECT coalesce(sum(events), 0) FROM telemetry_rollups WHERE bucket >= $1), (SELECT coalesce(sum(threats), 0) FROM telemetry_rollups WHERE bucket >= $1)`,
      [dayAgo],
    ),
    db.query("SELECT action_type, count(*)::int FROM action_requests WHERE status = 'pending' GROUP BY action_type"),
  ]);
};

const timeSequential = async (operation: string, n: number, fn: () => Promise<void>) => {
  for (let i = 0; i < Math.min(50, n); i++) await fn();
  const lat: number[] = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    lat.push(Number(process.hrtime.bigint() - t0));
  }
  const total = Number(process.hrtime.bigint() - start);
  lat.sort((a, b) => a - b);
  return { operation, n, opsPerSec: (n * 1e9) / total, p50Ns: percentile(lat, 0.5), p95Ns: percentile(lat, 0.95), p99Ns: percentile(lat, 0.99) };
};

export async function runDashboardBench(): Promise<BenchRow[]> {
  const scratch = await createScratchDatabase(PG_URL, "pc_bench").catch((error: unknown) => {
    say(`skipped: no PostgreSQL at ${PG_URL} (${(error as Error).message})`);
    return undefined;
  });
  if (!scratch) return [];
  const config = benchConfig();
  const db = await openDatabase({ databaseUrl: scratch.url, poolSize: 10 });
  let app: FastifyInstance | undefined;
  try {
    await migrate(db);
    // ---- the data: sensors, 10M events with rollups, blocks, incidents, pending requests
    const sensorIds = Array.from({ length: SENSORS }, () => randomUUID());
    for (const [i, id] of sensorIds.entries())
      await db.query(
        "INSERT INTO honeypot_instances (id, name, honeypot_type, location, created_at, created_by, updated_at, active, deactivated_at) VALUES ($1, $2, 'cowrie', 'bench', now(), 'bench', now(), $3, $4)",
        [id, `bench-${i}`, i !== 0, i === 0 ? new Date() : null],
      );
    const fillStart = Date.now();
    let lastId = 0n;
    for (let lo = 1; lo <= EVENTS; lo += CHUNK) {
      const hi = Math.min(EVENTS, lo + CHUNK - 1);
      await db.query(FILL_SQL, [sensorIds, lo, hi, EVENTS]);
      const [{ max }] = (await db.query<{ max: string }>("SELECT max(id)::text AS max FROM honeypot_events")) as [{ max: string }];
      await db.query(ROLLUP_SQL, [lastId.toString(), max]);
      lastId = BigInt(max);
      const secs = (Date.now() - fillStart) / 1000;
      say(`${hi.toLocaleString("en")} / ${EVENTS.toLocaleString("en")} events stored (${secs.toFixed(0)} s, ${Math.round(hi / secs).toLocaleString("en")} rows/s)`);
    }
    await db.query(`
      INSERT INTO blocked_entities (id, entity_type, value, reason, created_by, created_at, expires_at, active, forced)
      SELECT gen_random_uuid(), CASE WHEN g % 100 = 0 THEN 'cidr' WHEN g % 50 = 1 THEN 'user' ELSE 'ip' END,
        CASE WHEN g % 100 = 0 THEN '91.' || (g / 100 % 250) || '.' || (g % 250) || '.0/24' WHEN g % 50 = 1 THEN 'user' || g ELSE '45.' || (g / 62500 % 250) || '.' || (g / 250 % 250) || '.' || (g % 250 + 1) END,
        'bench', 'bench', now(), CASE WHEN g % 3 = 0 THEN now() + interval '7 days' END, true, false
      FROM generate_series(1, 20000) g`);
    await db.query(`
      INSERT INTO incidents (id, source_ip, threat, severity, status, opened_at, updated_at, last_event_at, evidence, resolved_at, resolved_by)
      SELECT gen_random_uuid(), '185.100.' || (g / 250 % 250) || '.' || (g % 250), (ARRAY['brute_force','credential_stuffing','port_scan','malware_download'])[1 + g % 4],
        (ARRAY['critical','high','medium','low'])[1 + g % 4], CASE WHEN g % 10 = 0 THEN 'open' ELSE 'resolved' END,
        now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval, '{"origin":"bench"}',
        CASE WHEN g % 10 = 0 THEN NULL ELSE now() END, CASE WHEN g % 10 = 0 THEN NULL ELSE 'bench' END
      FROM generate_series(1, 50000) g`);
    say("ANALYZE");
    await db.query("ANALYZE");
    app = await buildApp({ config, db, logger: false });
    await app.services.identity.bootstrapAdmin(ADMIN);
    // Pending requests through the real workflow (the sentinel's path: one per source).
    for (let i = 0; i < 200; i++)
      await app.services.sentinel.proposeBlock({ sourceIp: `5.188.${i >> 8}.${(i & 255) + 1}`, threat: "brute_force", severity: "high", origin: "bench", reason: "bench", evidence: {} });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    const headers = { authorization: `Bearer ${ADMIN}` };
    const snapshot = (await (await fetch(`${base}/security/dashboard`, { headers })).json()) as Record<string, any>;
    say(`dashboard: ${JSON.stringify(snapshot)}`);
    const [{ n }] = (await db.query<{ n: string }>("SELECT count(*)::text AS n FROM honeypot_events")) as [{ n: string }];
    say(`stored events: ${Number(n).toLocaleString("en")}`);

    const get = (path: string) => async () => {
      const res = await fetch(`${base}${path}`, { headers });
      if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
      await res.arrayBuffer();
    };
    const health = await timeSequential("GET /healthz over HTTP (reference)", REQUESTS, get("/healthz"));
    const raw = await timeSequential("dashboard SQL sent directly (reference)", REQUESTS, () => dashboardSql(db));
    const dash = await timeSequential(`GET /security/dashboard, ${Number(n).toLocaleString("en")} events`, REQUESTS, get("/security/dashboard"));
    say(`GET /security/dashboard p50 ${(dash.p50Ns / 1e6).toFixed(2)} ms, p95 ${(dash.p95Ns / 1e6).toFixed(2)} ms, p99 ${(dash.p99Ns / 1e6).toFixed(2)} ms (target p95 <= 50 ms)`);
    say(`references: /healthz p95 ${(health.p95Ns / 1e6).toFixed(2)} ms; dashboard SQL alone p95 ${(raw.p95Ns / 1e6).toFixed(2)} ms`);
    const strip = ({ p95Ns: _p95, ...row }: typeof dash): BenchRow => row;
    return [
      strip(health),
      strip(raw),
      { ...strip(dash), operation: `${dash.operation} (p95 ${(dash.p95Ns / 1e6).toFixed(1)} ms)`, reference: raw.operation, ratio: dash.opsPerSec / raw.opsPerSec },
    ];
  } finally {
    await app?.close();
    await db.close();
    say("dropping the scratch database");
    await scratch.drop();
  }
}

// ---------------------------------------------------------------- detection (BENCH_ONLY=detection)

/**
 * The sentinel's per-event cost on the ingestion listener: counting one event into the per-source
 * windows, beside the floor of any per-source counting (one Map increment per event) measured in
 * the same run; and reading one source's counts and classifying them (what a pass does per source).
 */
export async function runDetectionBench(): Promise<BenchRow[]> {
  const { DetectionWindows, ENTRIES_PER_SOURCE } = await import("../src/domains/detection/windows.ts");
  const { classifySource, classifyEvent } = await import("../src/domains/detection/classify.ts");
  const { measure } = await import("./table.ts");
  const SOURCES = 100_000;
  const N = 1 << 20;
  const now = Date.now();
  const kinds = ["auth_attempt", "auth_attempt", "auth_attempt", "connection", "session", "command", "scan", "auth_attempt"] as const;
  const users = ["root", "admin", "ubnt", "pi", "test", "oracle", "user", "support"];
  const events = Array.from({ length: N }, (_, i) => {
    const at = new Date(now - 9 * 60_000 + Math.floor((i / N) * 9 * 60_000));
    const kind = kinds[i % kinds.length]!;
    return {
      id: String(i + 1),
      sensorName: `trap-${i % 4}`,
      sourceIp: `45.${((i * 7919) % SOURCES >> 8) & 255}.${((i * 7919) % SOURCES) & 255}.${(((i * 7919) % SOURCES) >> 16) + 1}`,
      eventType: kind,
      detectedThreat: null,
      occurredAt: at,
      receivedAt: at,
      payload: kind === "auth_attempt" ? { username: users[i % 8], outcome: "failed", dst_port: 22 } : { dst_port: 22 + (i % 3), command: "uname -a" },
    };
  });
  const windows = new DetectionWindows({ maxSources: 1_000_000, maxEntries: 1_000_000 * ENTRIES_PER_SOURCE });
  const floor = new Map<string, number>();
  const WINDOW = 10 * 60_000;
  const reference = measure((i) => floor.set(events[i & (N - 1)]!.sourceIp, (floor.get(events[i & (N - 1)]!.sourceIp) ?? 0) + 1), { iterations: 100, batch: 10_000 });
  const record = measure((i) => {
    const e = events[i & (N - 1)]!;
    return windows.record(e, now, WINDOW, classifyEvent(e));
  }, { iterations: 100, batch: 10_000 });
  const ips = [...new Set(events.slice(0, 50_000).map((e) => e.sourceIp))];
  const t = { maxFailedAuth: 5, maxScanEvents: 10, distinctUsernames: 10, distinctPorts: 10 };
  const classify = measure((i) => classifySource(windows.counts(ips[i % ips.length]!, now, WINDOW)!, t).length, { iterations: 50, batch: 1_000 });
  const ref = "Map increment per event (floor, reference)";
  return [
    { operation: ref, n: 1_000_000, opsPerSec: reference.opsPerSec, p50Ns: reference.p50Ns, p99Ns: reference.p99Ns },
    { operation: `sentinel: count one event into its source's window (${windows.size.toLocaleString("en")} sources)`, n: 1_000_000, opsPerSec: record.opsPerSec, p50Ns: record.p50Ns, p99Ns: record.p99Ns, reference: ref, ratio: record.opsPerSec / reference.opsPerSec },
    { operation: "sentinel: read one source's window and classify it", n: 50_000, opsPerSec: classify.opsPerSec, p50Ns: classify.p50Ns, p99Ns: classify.p99Ns },
  ];
}
