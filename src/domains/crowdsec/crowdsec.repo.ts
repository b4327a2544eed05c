// SQL of the CrowdSec surface. Decision reads return the high-water mark of the change sequence
// from the same statement (one snapshot) as the rows, which is what makes a bouncer's cursor safe.
import { and, asc, desc, eq, gt, lt, sql, type SQL } from "drizzle-orm";
import { rowsOf, type Executor } from "../../db/client.ts";
import type { DecisionRow } from "./decision-feed.ts";
import { crowdsecAlerts as al, crowdsecBouncers as bo, crowdsecUsageMetrics as um, crowdsecWatchers as wa } from "./crowdsec.tables.ts";

export type BouncerRow = typeof bo.$inferSelect;
export type WatcherRow = typeof wa.$inferSelect;
export type AlertRow = typeof al.$inferSelect;

// Numbers and epoch milliseconds straight from SQL: both drivers then return plain numbers, and
// 100,000 rows cost no Date parsing.
const DECISION_COLUMNS = sql.raw(`id::float8 AS id, block_id::text AS block_id, scope, value, reason, created_by,
  (extract(epoch FROM expires_at) * 1000)::float8 AS expires_at, deleted_seq::float8 AS deleted_seq,
  (extract(epoch FROM deleted_at) * 1000)::float8 AS deleted_at, deleted_by`);
const HIGH_WATER = sql.raw(`greatest(coalesce((SELECT max(id) FROM crowdsec_decisions), 0), coalesce((SELECT max(deleted_seq) FROM crowdsec_decisions), 0))::float8`);

type Marked = DecisionRow & { kind: string; hw: number };

const split = (rows: Marked[]) => {
  let seq = 0;
  const out: Record<string, DecisionRow[]> = { live: [], changed: [], new: [], deleted: [] };
  for (const r of rows) {
    if (r.kind === "hw") seq = Number(r.hw);
    else out[r.kind]!.push(r);
  }
  return { seq, ...out } as { seq: number; live: DecisionRow[]; changed: DecisionRow[]; new: DecisionRow[]; deleted: DecisionRow[] };
};

// The high-water arm comes first in each UNION and so names the columns.
const nullRow = sql.raw(`NULL::float8 AS id, NULL::text AS block_id, NULL::text AS scope, NULL::text AS value, NULL::text AS reason,
  NULL::text AS created_by, NULL::float8 AS expires_at, NULL::float8 AS deleted_seq, NULL::float8 AS deleted_at, NULL::text AS deleted_by`);

export const crowdsecRepo = (db: Executor) => ({
  // --- decisions (read only: the table is written by the projection trigger) ---

  /** Every live decision at `now` and the high-water mark, in one snapshot (mirror load). */
  liveDecisions: async (now: Date, ex: Executor = db) =>
    split(
      rowsOf<Marked>(
        await ex.execute(sql`
          SELECT 'hw' AS kind, ${HIGH_WATER} AS hw, ${nullRow}
          UNION ALL
          SELECT 'live', NULL, ${DECISION_COLUMNS} FROM crowdsec_decisions
           WHERE deleted_seq IS NULL AND (expires_at IS NULL OR expires_at > ${now})`),
      ),
    ),

  /** Rows created or ended after `seq`, and the high-water mark, in one snapshot (mirror catch-up). */
  decisionsChangedSince: async (seq: number, ex: Executor = db) =>
    split(
      rowsOf<Marked>(
        await ex.execute(sql`
          SELECT 'hw' AS kind, ${HIGH_WATER} AS hw, ${nullRow}
          UNION ALL
          SELECT 'changed', NULL, ${DECISION_COLUMNS} FROM crowdsec_decisions WHERE id > ${seq}
          UNION ALL
          SELECT 'changed', NULL, ${DECISION_COLUMNS} FROM crowdsec_decisions WHERE deleted_seq > ${seq} AND id <= ${seq}`),
      ),
    ),

  /**
   * A bouncer's delta: the cursor (seq, at) its last pull saw, `now` this pull's time.
   * new: created after the cursor, not ended, not expired. deleted: sent before (id <= seq) and
   * ended after the cursor, or expired in (at, now] without the sweep having recorded it yet; an
   * expiry the sweep recorded after a pull had already reported it by time is not repeated.
   */
  decisionsDelta: async (seq: number, at: Date, now: Date, ex: Executor = db) =>
    split(
      rowsOf<Marked>(
        await ex.execute(sql`
          SELECT 'hw' AS kind, ${HIGH_WATER} AS hw, ${nullRow}
          UNION ALL
          SELECT 'new', NULL, ${DECISION_COLUMNS} FROM crowdsec_decisions
           WHERE id > ${seq} AND deleted_seq IS NULL AND (expires_at IS NULL OR expires_at > ${now})
          UNION ALL
          SELECT 'deleted', NULL, ${DECISION_COLUMNS} FROM crowdsec_decisions
           WHERE deleted_seq > ${seq} AND id <= ${seq}
             AND NOT (deleted_by = 'system:expiry' AND expires_at IS NOT NULL AND expires_at <= ${at})
          UNION ALL
          SELECT 'deleted', NULL, ${DECISION_COLUMNS} FROM crowdsec_decisions
           WHERE deleted_seq IS NULL AND id <= ${seq} AND expires_at > ${at} AND expires_at <= ${now}`),
      ),
    ),

  /** Decisions that ended in [since, now] or expired unrecorded: a startup stream's "deleted". */
  decisionsEnded: async (since: Date, now: Date, limit: number, ex: Executor = db): Promise<DecisionRow[]> =>
    rowsOf<DecisionRow>(
      await ex.execute(sql`
        (SELECT ${DECISION_COLUMNS} FROM crowdsec_decisions WHERE deleted_seq IS NOT NULL AND deleted_at >= ${since} ORDER BY deleted_at DESC LIMIT ${limit})
        UNION ALL
        (SELECT ${DECISION_COLUMNS} FROM crowdsec_decisions WHERE deleted_seq IS NULL AND expires_at <= ${now} AND expires_at >= ${since} LIMIT ${limit})`),
    ),

  decisionByBlock: async (blockId: string, ex: Executor = db): Promise<DecisionRow | undefined> =>
    rowsOf<DecisionRow>(await ex.execute(sql`SELECT ${DECISION_COLUMNS} FROM crowdsec_decisions WHERE block_id = ${blockId}`))[0],

  decisionById: async (id: number, ex: Executor = db): Promise<DecisionRow | undefined> =>
    rowsOf<DecisionRow>(await ex.execute(sql`SELECT ${DECISION_COLUMNS} FROM crowdsec_decisions WHERE id = ${id}`))[0],

  // --- bouncers ---
  insertBouncer: async (row: BouncerRow, ex: Executor = db): Promise<BouncerRow> => (await ex.insert(bo).values(row).returning())[0]!,
  bouncerByHash: async (hash: string, ex: Executor = db): Promise<BouncerRow | undefined> =>
    (await ex.select().from(bo).where(eq(bo.keyHash, hash)).limit(1))[0],
  bouncerByName: async (name: string, ex: Executor = db): Promise<BouncerRow | undefined> =>
    (await ex.select().from(bo).where(sql`lower(${bo.name}) = lower(${name})`).limit(1))[0],
  bouncerById: async (id: string, ex: Executor = db): Promise<BouncerRow | undefined> => (await ex.select().from(bo).where(eq(bo.id, id)).limit(1))[0],
  listBouncers: async (ex: Executor = db): Promise<BouncerRow[]> => ex.select().from(bo).orderBy(asc(bo.name)),
  deleteBouncer: async (id: string, ex: Executor = db): Promise<BouncerRow | undefined> => (await ex.delete(bo).where(eq(bo.id, id)).returning())[0],
  /** Last pull, address and agent; the stream cursor when given. Never moves last_pull_at backwards. */
  recordPull: async (
    id: string,
    pull: { at: Date; address: string | null; agentName: string | null; agentVersion: string | null; cursor?: { seq: number; at: Date } },
    ex: Executor = db,
  ) => {
    await ex
      .update(bo)
      .set({
        lastPullAt: sql`greatest(${bo.lastPullAt}, ${pull.at})`,
        lastAddress: pull.address,
        ...(pull.agentName !== null ? { agentName: pull.agentName, agentVersion: pull.agentVersion } : {}),
        ...(pull.cursor ? { streamSeq: pull.cursor.seq, streamAt: pull.cursor.at } : {}),
      })
      .where(eq(bo.id, id));
  },

  // --- watchers ---
  insertWatcher: async (row: WatcherRow, ex: Executor = db): Promise<WatcherRow> => (await ex.insert(wa).values(row).returning())[0]!,
  watcherByMachineId: async (machineId: string, ex: Executor = db): Promise<WatcherRow | undefined> =>
    (await ex.select().from(wa).where(sql`lower(${wa.machineId}) = lower(${machineId})`).limit(1))[0],
  watcherById: async (id: string, ex: Executor = db): Promise<WatcherRow | undefined> => (await ex.select().from(wa).where(eq(wa.id, id)).limit(1))[0],
  listWatchers: async (ex: Executor = db): Promise<WatcherRow[]> => ex.select().from(wa).orderBy(asc(wa.machineId)),
  updateWatcher: async (id: string, set: Partial<WatcherRow>, ex: Executor = db): Promise<WatcherRow | undefined> =>
    (await ex.update(wa).set(set).where(eq(wa.id, id)).returning())[0],
  deleteWatcher: async (id: string, ex: Executor = db): Promise<WatcherRow | undefined> => (await ex.delete(wa).where(eq(wa.id, id)).returning())[0],

  // --- alerts and metrics ---
  insertAlert: async (row: Omit<AlertRow, "id">, ex: Executor = db): Promise<AlertRow> => (await ex.insert(al).values(row).returning())[0]!,
  alertByKey: async (key: string, ex: Executor = db): Promise<AlertRow | undefined> => (await ex.select().from(al).where(eq(al.alertKey, key)).limit(1))[0],
  updateAlert: async (id: number, set: Partial<Omit<AlertRow, "id">>, ex: Executor = db) => {
    await ex.update(al).set(set).where(eq(al.id, id));
  },
  listAlerts: async (filter: { watcherId?: string; sourceValue?: string; scenario?: string; since?: Date; until?: Date }, limit: number, ex: Executor = db): Promise<AlertRow[]> => {
    const where: SQL[] = [];
    if (filter.watcherId) where.push(eq(al.watcherId, filter.watcherId));
    if (filter.sourceValue) where.push(eq(al.sourceValue, filter.sourceValue));
    if (filter.scenario) where.push(eq(al.scenario, filter.scenario));
    if (filter.since) where.push(gt(al.receivedAt, filter.since));
    if (filter.until) where.push(lt(al.receivedAt, filter.until));
    return ex.select().from(al).where(where.length ? and(...where) : undefined).orderBy(desc(al.id)).limit(limit);
  },
  insertUsageMetrics: async (row: Omit<typeof um.$inferSelect, "id">, ex: Executor = db): Promise<number> =>
    (await ex.insert(um).values(row).returning({ id: um.id }))[0]!.id,
});
export type CrowdsecRepo = ReturnType<typeof crowdsecRepo>;
