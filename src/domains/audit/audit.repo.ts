// SQL for the audit log. Appends take a transaction-scoped advisory lock so sequence numbers are
// gap-free and totally ordered even with several server nodes on one PostgreSQL (the Merkle log
// builds on that order); the lock is released at commit or rollback.
import { and, asc, eq, gte, lte, sql, type SQL } from "drizzle-orm";
import { rowsOf, type Executor, type Tx } from "../../db/client.ts";
import { auditLog } from "./audit.tables.ts";

export type AuditRow = typeof auditLog.$inferSelect;
export type NewAuditRow = Omit<AuditRow, "seq">;

// Arbitrary constant naming the audit appender's advisory lock.
const AUDIT_APPEND_LOCK = 7_310_002;

export type AuditFilter = {
  action?: string | undefined;
  targetType?: string | undefined;
  targetId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  afterSeq?: number | undefined;
};

export const auditRepo = (db: Executor) => ({
  append: async (tx: Tx, row: NewAuditRow): Promise<number> => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${AUDIT_APPEND_LOCK})`);
    const [next] = rowsOf<{ seq: string | number }>(
      await tx.execute(sql`SELECT COALESCE(MAX(seq), -1) + 1 AS seq FROM audit_log`),
    );
    const seq = Number(next?.seq ?? 0);
    await tx.insert(auditLog).values({ ...row, seq });
    return seq;
  },
  list: async (filter: AuditFilter, limit: number, ex: Executor = db): Promise<AuditRow[]> => {
    const where: SQL[] = [];
    if (filter.action) where.push(eq(auditLog.action, filter.action));
    if (filter.targetType) where.push(eq(auditLog.targetType, filter.targetType));
    if (filter.targetId) where.push(eq(auditLog.targetId, filter.targetId));
    if (filter.from) where.push(gte(auditLog.occurredAt, filter.from));
    if (filter.to) where.push(lte(auditLog.occurredAt, filter.to));
    if (filter.afterSeq !== undefined) where.push(sql`${auditLog.seq} > ${filter.afterSeq}`);
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
});
export type AuditRepo = ReturnType<typeof auditRepo>;
