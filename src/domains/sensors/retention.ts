// Telemetry retention: events received more than sensors.retentionDays ago are removed in batches
// of consecutive ids. Each batch is one transaction that first appends a signed summary of exactly
// what it removes (count, first/last id, SHA-256 over the batch's event keys in id order) to the
// audit log, then lifts the append-only guard for itself alone (SET LOCAL) and deletes those events
// and their triage state. Rollups older than the cutoff go too. Retention is by received_at (how long
// we have held an event), not occurred_at: a replay of old logs must not vanish at the next run.
import { createHash, sign, verify, type KeyObject } from "node:crypto";
import { sql } from "drizzle-orm";
import { rowsOf, type Database, type Tx } from "../../db/client.ts";
import { canonicalize } from "../../lib/jcs.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { systemActor } from "../identity/principal.ts";

export const RETENTION_SUMMARY_KIND = "portcullis.sensors.retention.v1";
export const RETENTION_ACTION = "sensors.events.retention";
export const ROLLUP_RETENTION_ACTION = "sensors.rollups.retention";

export type RetentionSummary = {
  kind: typeof RETENTION_SUMMARY_KIND;
  /** Events received before this instant are due. */
  cutoff: string;
  retention_days: number;
  count: number;
  first_id: string;
  last_id: string;
  /** "sha256:" + hex of SHA-256 over the 16-byte event keys of the batch, concatenated in id order. */
  digest: string;
  removed_at: string;
};

/** What the audit entry's details hold: the summary and an Ed25519 signature over its canonical JSON. */
export type SignedRetentionSummary = { summary: RetentionSummary; key_id: string; signature: string };

export type RetentionRun = { cutoff: Date; batches: number; events: number; rollups: number; skipped?: "another run holds the lock" };

export const retentionDigest = (keys: readonly Buffer[]): string => {
  const hash = createHash("sha256");
  for (const k of keys) hash.update(k);
  return `sha256:${hash.digest("hex")}`;
};

export const signRetentionSummary = (privateKey: KeyObject, summary: RetentionSummary): string =>
  sign(null, Buffer.from(canonicalize(summary), "utf8"), privateKey).toString("base64");

/** Checks a summary's signature with the audit public key (GET /audit/public-key). */
export const verifyRetentionSummary = (publicKey: KeyObject, signed: SignedRetentionSummary): boolean =>
  verify(null, Buffer.from(canonicalize(signed.summary), "utf8"), publicKey, Buffer.from(signed.signature, "base64"));

// Every node may run the job; one batch at a time cluster-wide (a transaction-scoped advisory lock).
const LOCK_KEY = 0x70637274; // "pcrt"

type Deps = {
  db: Database;
  audit: Pick<AuditService, "append">;
  clock: Clock;
  signing: { privateKey: KeyObject; keyIdHex: string };
  settings: { retentionDays: number; batchSize?: number };
};

export const sensorsRetention = ({ db, audit, clock, signing, settings }: Deps) => {
  const batchSize = settings.batchSize ?? 10_000;
  const actor = systemActor("retention");

  /** One batch: the oldest due events by id. Returns how many were removed (0: nothing due), or null when locked out. */
  const removeBatch = async (tx: Tx, cutoff: Date, now: Date): Promise<number | null> => {
    const [lock] = rowsOf<{ ok: boolean }>(await tx.execute(sql`SELECT pg_try_advisory_xact_lock(${LOCK_KEY}) AS ok`));
    if (!lock?.ok) return null;
    // The oldest events in id order, stopping at the first one not yet due: batches are contiguous
    // id ranges, read through the primary key without an index on received_at.
    const rows = rowsOf<{ id: string; event_key: Uint8Array; due: boolean }>(
      await tx.execute(sql`SELECT id::text AS id, event_key, received_at < ${cutoff.toISOString()}::timestamptz AS due FROM honeypot_events ORDER BY honeypot_events.id LIMIT ${batchSize}`),
    );
    let n = 0;
    while (n < rows.length && rows[n]!.due) n++;
    if (n === 0) return 0;
    const batch = rows.slice(0, n);
    const ids = batch.map((r) => r.id);
    const summary: RetentionSummary = {
      kind: RETENTION_SUMMARY_KIND,
      cutoff: cutoff.toISOString(),
      retention_days: settings.retentionDays,
      count: n,
      first_id: ids[0]!,
      last_id: ids[n - 1]!,
      digest: retentionDigest(batch.map((r) => Buffer.from(r.event_key))),
      removed_at: now.toISOString(),
    };
    const details: SignedRetentionSummary = { summary, key_id: signing.keyIdHex, signature: signRetentionSummary(signing.privateKey, summary) };
    await audit.append(tx, actor, { action: RETENTION_ACTION, target: { type: "honeypot_events", id: `${summary.first_id}..${summary.last_id}` }, details });
    await tx.execute(sql`SELECT set_config('portcullis.retention', 'on', true)`);
    const idArray = `{${ids.join(",")}}`;
    await tx.execute(sql`DELETE FROM honeypot_event_state WHERE event_id = ANY(${idArray}::bigint[])`);
    const deleted = rowsOf<{ id: string }>(await tx.execute(sql`DELETE FROM honeypot_events WHERE id = ANY(${idArray}::bigint[]) RETURNING id::text AS id`));
    // The summary must describe exactly what went: anything else rolls the batch (and its entry) back.
    if (deleted.length !== n) throw new Error(`retention batch ${summary.first_id}..${summary.last_id}: expected to remove ${n} events, removed ${deleted.length}`);
    return n;
  };

  const removeRollups = async (tx: Tx, cutoff: Date): Promise<number> => {
    const removed = rowsOf<{ n: number }>(
      await tx.execute(sql`WITH gone AS (DELETE FROM telemetry_rollups WHERE bucket < ${cutoff.toISOString()}::timestamptz RETURNING 1) SELECT count(*)::int AS n FROM gone`),
    );
    const n = removed[0]?.n ?? 0;
    if (n > 0) await audit.append(tx, actor, { action: ROLLUP_RETENTION_ACTION, target: { type: "telemetry_rollups", id: "*" }, details: { cutoff: cutoff.toISOString(), retention_days: settings.retentionDays, count: n } });
    return n;
  };

  /** Removes everything due at `now`, batch after batch. */
  const run = async (now: Date = clock.now()): Promise<RetentionRun> => {
    const cutoff = new Date(now.getTime() - settings.retentionDays * 86_400_000);
    const result: RetentionRun = { cutoff, batches: 0, events: 0, rollups: 0 };
    for (;;) {
      const n = await db.transaction((tx) => removeBatch(tx, cutoff, now));
      if (n === null) return { ...result, skipped: "another run holds the lock" };
      if (n === 0) break;
      result.batches++;
      result.events += n;
      if (n < batchSize) break;
    }
    result.rollups = await db.transaction((tx) => removeRollups(tx, cutoff));
    return result;
  };

  return { run };
};
export type SensorsRetention = ReturnType<typeof sensorsRetention>;
