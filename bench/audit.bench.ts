// Audit transparency log: append throughput (one entry per transaction and 100 per transaction) on
// PGlite and PostgreSQL beside a plain single-row INSERT measured in the same run; proof generation
// at 1M entries; and offline verification of a 1M-entry export.
import { generateKeyPairSync, randomInt } from "node:crypto";
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createScratchDatabase } from "../test/helpers/scratch-db.ts";
import { sql } from "drizzle-orm";
import { loadConfig } from "../src/config/index.ts";
import { openDatabase, type Database } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { buildServices } from "../src/app/build.ts";
import { systemClock } from "../src/lib/time.ts";
import { systemActor } from "../src/domains/identity/principal.ts";
import { toAuditEntry } from "../src/domains/audit/audit.service.ts";
import { auditRepo } from "../src/domains/audit/audit.repo.ts";
import { consistencyProof, inclusionProof } from "../src/lib/merkle.ts";
import { verifyExportDir } from "../src/cli/audit-verify.ts";
import { percentile, type BenchRow } from "./table.ts";

const PG_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const LOG_SIZE = Number(process.env.BENCH_AUDIT_SIZE ?? 1_000_000);
const SINGLE = 2000;
const BATCHES = 200;
const BATCH = 100;

const signingKey = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const config = loadConfig({ env: {}, flags: { "signing.privateKey": signingKey, "audit.origin": "bench.portcullis/audit", "log.level": "warn" } }).config;
const actor = systemActor("bench");
const details = { entity_type: "ip", value: "5.188.86.172", reason: "ssh brute force from a honeypot", expires_at: null };

const freshPostgres = async (): Promise<{ db: Database; drop: () => Promise<void> } | undefined> => {
  const scratch = await createScratchDatabase(PG_URL, "pc_bench").catch(() => undefined);
  if (!scratch) return undefined;
  const db = await openDatabase({ databaseUrl: scratch.url, poolSize: 4 });
  return {
    db,
    drop: async () => {
      await db.close();
      await scratch.drop();
    },
  };
};

/** Times `count` calls of `fn`; returns a row with per-call (or per-entry when perCall > 1) latencies. */
const timeCalls = async (operation: string, count: number, perCall: number, fn: (i: number) => Promise<unknown>): Promise<BenchRow> => {
  const lat = new Float64Array(count);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    lat[i] = Number(process.hrtime.bigint() - t0) / perCall;
  }
  const totalNs = Number(process.hrtime.bigint() - start);
  lat.sort();
  return { operation, n: count * perCall, opsPerSec: (count * perCall * 1e9) / totalNs, p50Ns: percentile(lat, 0.5), p99Ns: percentile(lat, 0.99) };
};

const appendRows = async (kind: string, db: Database): Promise<BenchRow[]> => {
  await migrate(db);
  await db.query("CREATE TABLE bench_plain (id bigint PRIMARY KEY, body jsonb NOT NULL)");
  const services = buildServices(config, db, systemClock);
  const plain = await timeCalls(`plain INSERT, 1 row/tx (${kind})`, SINGLE, 1, (i) =>
    db.transaction(async (tx) => {
      await tx.execute(sql`INSERT INTO bench_plain VALUES (${i}, ${JSON.stringify(details)}::jsonb)`);
    }),
  );
  const reference = { reference: plain.operation, base: plain.opsPerSec };
  const single = await timeCalls(`audit append, 1 entry/tx (${kind})`, SINGLE, 1, () =>
    db.transaction((tx) => services.audit.append(tx, actor, { action: "bench.single", details })),
  );
  const entries = Array.from({ length: BATCH }, () => ({ action: "bench.batch", details }));
  const batched = await timeCalls(`audit append, ${BATCH} entries/tx (${kind}, per entry)`, BATCHES, BATCH, () =>
    db.transaction((tx) => services.audit.appendBatch(tx, actor, entries)),
  );
  return [plain, ...[single, batched].map((r) => ({ ...r, reference: reference.reference, ratio: r.opsPerSec / reference.base }))];
};

export async function runAuditBench(log: (line: string) => void = console.log): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const lite = await openDatabase({});
  try {
    rows.push(...(await appendRows("PGlite", lite)));
  } finally {
    await lite.close();
  }
  const pgDb = await freshPostgres();
  if (!pgDb) {
    log(`audit bench: PostgreSQL not reachable at ${PG_URL}; skipping its rows`);
    return rows;
  }
  try {
    rows.push(...(await appendRows("PostgreSQL", pgDb.db)));
  } finally {
    await pgDb.drop();
  }

  // A 1M-entry log on PostgreSQL: fill it in 1,000-entry transactions, then time proofs and verification.
  const big = await freshPostgres();
  if (!big) return rows;
  const work = mkdtempSync(join(tmpdir(), "portcullis-audit-bench-"));
  try {
    await migrate(big.db);
    const services = buildServices(config, big.db, systemClock);
    const fillBatch = Array.from({ length: 1000 }, (_, i) => ({ action: "bench.fill", target: { type: "block", id: String(i) }, details }));
    const t0 = process.hrtime.bigint();
    for (let done = 0; done < LOG_SIZE; done += 1000) {
      await big.db.transaction((tx) => services.audit.appendBatch(tx, actor, fillBatch.slice(0, Math.min(1000, LOG_SIZE - done))));
      if (done % 100_000 === 0) log(`audit bench: filled ${done}/${LOG_SIZE}`);
    }
    const fillS = Number(process.hrtime.bigint() - t0) / 1e9;
    rows.push({ operation: "audit append, 1000 entries/tx (PostgreSQL, fill)", n: LOG_SIZE, opsPerSec: LOG_SIZE / fillS, p50Ns: Number.NaN, p99Ns: Number.NaN });
    await services.transparency.issueCheckpoint();
    // As autovacuum would have by now in a live deployment: plan the proof queries on real statistics.
    await big.db.query("VACUUM ANALYZE audit_tree");
    await big.db.query("VACUUM ANALYZE audit_log");

    const repo = auditRepo(big.db.orm);
    const read = repo.nodeReader();
    // Steady state: JIT, connection pool and the upper-node cache warmed by 500 proofs first.
    for (let i = 0; i < 500; i++) await inclusionProof(randomInt(LOG_SIZE), LOG_SIZE, read);
    rows.push(await timeCalls(`inclusion proof at ${LOG_SIZE / 1e6}M entries (PostgreSQL)`, 2000, 1, () => inclusionProof(randomInt(LOG_SIZE), LOG_SIZE, read)));
    rows.push(
      await timeCalls(`consistency proof at ${LOG_SIZE / 1e6}M entries (PostgreSQL)`, 2000, 1, () => consistencyProof(1 + randomInt(LOG_SIZE - 1), LOG_SIZE, read)),
    );

    // Export as `audit export` writes it (straight from the table, to keep HTTP out of this number).
    const out = createWriteStream(join(work, "entries.ndjson"));
    for (let start = 0; start < LOG_SIZE; start += 10_000) {
      const page = await repo.list({ start, end: start + 10_000 }, 10_000);
      let chunk = "";
      for (const row of page) chunk += `${JSON.stringify(toAuditEntry(row))}\n`;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
    }
    await new Promise<void>((r) => out.end(() => r()));
    writeFileSync(join(work, "checkpoint"), (await repo.latestCheckpoint())!.note);
    writeFileSync(join(work, "public-key"), `${services.transparency.publicKey}\n`);
    const v0 = process.hrtime.bigint();
    const verified = await verifyExportDir(work, services.transparency.publicKey);
    const verifyNs = Number(process.hrtime.bigint() - v0);
    if (verified.tree_size !== LOG_SIZE) throw new Error(`verified ${verified.tree_size} entries, expected ${LOG_SIZE}`);
    rows.push({ operation: `offline verify of a ${LOG_SIZE / 1e6}M-entry export (total ${(verifyNs / 1e9).toFixed(1)} s)`, n: LOG_SIZE, opsPerSec: (LOG_SIZE * 1e9) / verifyNs, p50Ns: Number.NaN, p99Ns: Number.NaN });
  } finally {
    rmSync(work, { recursive: true, force: true });
    await big.drop();
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const { printTable } = await import("./table.ts");
  printTable(await runAuditBench());
}
