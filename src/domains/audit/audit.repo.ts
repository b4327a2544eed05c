// SQL for the audit log and its Merkle tree. Appenders serialise on a transaction-scoped advisory
// lock, so sequence numbers (= leaf indices) are gap-free and totally ordered even with several
// server nodes on one PostgreSQL; the lock is released at commit or rollback.
import { and, asc, desc, eq, gte, lt, lte, sql, type SQL } from "drizzle-orm";
import { rowsOf, type Executor, type Tx } from "../../db/client.ts";
import { auditCheckpoints, auditLog, auditTree } from "./audit.tables.ts";
import { nodeKeyString, type NodeKey, type NodeReader } from "../../lib/merkle.ts";

export type AuditRow = typeof auditLog.$inferSelect;
export type CheckpointRow = typeof auditCheckpoints.$inferSelect;

// Arbitrary constants naming the advisory locks.
const AUDIT_APPEND_LOCK = 7_310_002;
const CHECKPOINT_LOCK = 7_310_003;

export type AuditFilter = {
  action?: string | undefined;
  targetType?: string | undefined;
  targetId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  /** index range [start, end) */
  start?: number | undefined;
  end?: number | undefined;
};

export const auditRepo = (db: Executor) => {
  const treeSize = async (ex: Executor = db): Promise<number> => {
    const [row] = rowsOf<{ n: string | number }>(await ex.execute(sql`SELECT COALESCE(MAX(seq), -1) + 1 AS n FROM audit_log`));
    return Number(row?.n ?? 0);
  };

  /** Reads tree nodes in one query. */
  // Committed tree nodes never change, so upper-level nodes (shared by many proofs) are cached once
  // read outside a transaction. Reads inside a transaction may see that transaction's own uncommitted
  // nodes, which a rollback would void, so they bypass the cache.
  const upperNodes = new Map<string, Buffer>();
  const CACHE_MIN_LEVEL = 4;
  const CACHE_MAX = 200_000;

  const nodeReader =
    (ex: Executor = db): NodeReader =>
    async (keys: readonly NodeKey[]) => {
      const cacheable = ex === db;
      const found = new Map<string, Buffer>();
      const missing: NodeKey[] = [];
      for (const k of keys) {
        const hit = cacheable ? upperNodes.get(nodeKeyString(k)) : undefined;
        if (hit) found.set(nodeKeyString(k), hit);
        else missing.push(k);
      }
      if (missing.length === 0) return found;
      const wanted = sql.join(
        missing.map((k) => sql`(${k.level}::smallint, ${k.index}::bigint)`),
        sql`, `,
      );
      const rows = await ex
        .select()
        .from(auditTree)
        .where(sql`(${auditTree.level}, ${auditTree.idx}) IN (${wanted})`);
      for (const r of rows) {
        const key = nodeKeyString({ level: r.level, index: r.idx });
        found.set(key, r.hash);
        if (cacheable && r.level >= CACHE_MIN_LEVEL && upperNodes.size < CACHE_MAX) upperNodes.set(key, r.hash);
      }
      return found;
    };

  return {
    /** Takes the appender lock for the rest of `tx`; returns the tree size and the last leaf's hash. */
    lockForAppend: async (tx: Tx): Promise<{ size: number; lastLeafHash: Buffer | null }> => {
      const [row] = rowsOf<{ size: string | number; last_leaf_hash: Uint8Array | null }>(
        await tx.execute(sql`SELECT size, last_leaf_hash FROM portcullis_audit_lock_for_append(${AUDIT_APPEND_LOCK})`),
      );
      return { size: Number(row!.size), lastLeafHash: row!.last_leaf_hash ? Buffer.from(row!.last_leaf_hash) : null };
    },
    lockForCheckpoint: async (tx: Tx): Promise<void> => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${CHECKPOINT_LOCK})`);
    },
    treeSize,
    nodeReader,
    /**
     * Entries and their new tree nodes in one statement and one round trip. Rows travel as one JSON
     * parameter (json_to_recordset), which both drivers pass as plain text.
     */
    insertEntriesAndNodes: async (tx: Tx, rows: AuditRow[], nodes: { key: NodeKey; hash: Buffer }[]) => {
      const entries = JSON.stringify(
        rows.map((r) => ({
          seq: r.seq,
          occurred_at: r.occurredAt.toISOString(),
          actor_type: r.actorType,
          actor_id: r.actorId,
          actor_name: r.actorName,
          action: r.action,
          target_type: r.targetType,
          target_id: r.targetId,
          request_id: r.requestId,
          leaf: r.leaf,
          leaf_hash: r.leafHash.toString("hex"),
        })),
      );
      const tree = JSON.stringify(nodes.map((n) => ({ level: n.key.level, idx: n.key.index, hash: n.hash.toString("hex") })));
      await tx.execute(sql`
        -- A data-modifying CTE always runs to completion, whether or not the outer statement reads it.
        WITH entries AS (
          INSERT INTO audit_log (seq, occurred_at, actor_type, actor_id, actor_name, action, target_type, target_id, request_id, leaf, leaf_hash)
          SELECT seq, occurred_at, actor_type, actor_id, actor_name, action, target_type, target_id, request_id, leaf, decode(leaf_hash, 'hex')
          FROM json_to_recordset(${entries}::json) AS u(
            seq bigint, occurred_at timestamptz, actor_type text, actor_id text, actor_name text, action text,
            target_type text, target_id text, request_id text, leaf text, leaf_hash text)
        )
        INSERT INTO audit_tree (level, idx, hash)
        SELECT level, idx, decode(hash, 'hex') FROM json_to_recordset(${tree}::json) AS n(level smallint, idx bigint, hash text)`);
    },
    list: async (filter: AuditFilter, limit: number, ex: Executor = db): Promise<AuditRow[]> => {
      const where: SQL[] = [];
      if (filter.action) where.push(eq(auditLog.action, filter.action));
      if (filter.targetType) where.push(eq(auditLog.targetType, filter.targetType));
      if (filter.targetId) where.push(eq(auditLog.targetId, filter.targetId));
      if (filter.from) where.push(gte(auditLog.occurredAt, filter.from));
      if (filter.to) where.push(lte(auditLog.occurredAt, filter.to));
      if (filter.start !== undefined) where.push(gte(auditLog.seq, filter.start));
      if (filter.end !== undefined) where.push(lt(auditLog.seq, filter.end));
      return ex
        .select()
        .from(auditLog)
        .where(where.length ? and(...where) : undefined)
        .orderBy(asc(auditLog.seq))
        .limit(limit);
    },
    get: async (seq: number, ex: Executor = db): Promise<AuditRow | undefined> => {
      const [row] = await ex.select().from(auditLog).where(eq(auditLog.seq, seq)).limit(1);
      return row;
    },
    latestCheckpoint: async (ex: Executor = db): Promise<CheckpointRow | undefined> => {
      const [row] = await ex.select().from(auditCheckpoints).orderBy(desc(auditCheckpoints.treeSize)).limit(1);
      return row;
    },
    checkpointAt: async (size: number, ex: Executor = db): Promise<CheckpointRow | undefined> => {
      const [row] = await ex.select().from(auditCheckpoints).where(eq(auditCheckpoints.treeSize, size)).limit(1);
      return row;
    },
    listCheckpoints: async (before: number | undefined, limit: number, ex: Executor = db): Promise<CheckpointRow[]> =>
      ex
        .select()
        .from(auditCheckpoints)
        .where(before !== undefined ? lt(auditCheckpoints.treeSize, before) : undefined)
        .orderBy(desc(auditCheckpoints.treeSize))
        .limit(limit),
    insertCheckpoint: async (tx: Tx, row: CheckpointRow) => {
      await tx.insert(auditCheckpoints).values(row);
    },
  };
};
export type AuditRepo = ReturnType<typeof auditRepo>;
