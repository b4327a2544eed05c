// SQL of the action workflow. Every state change is a conditional UPDATE (`WHERE status IN (...)`)
// so that of several concurrent callers exactly one sees a row come back; the rest see none.
import { and, asc, eq, gte, inArray, lte, sql, type SQL } from "drizzle-orm";
import type { Executor } from "../../db/client.ts";
import { newestFirst, olderThan } from "../../db/keyset.ts";
import type { TimeIdCursor } from "../../lib/pagination.ts";
import { actionApprovals, actionHistory, actionRequests as r, actionWebhookDeliveries as d } from "./actions.tables.ts";

export type ActionRow = typeof r.$inferSelect;
export type ApprovalRow = typeof actionApprovals.$inferSelect;
export type HistoryRow = typeof actionHistory.$inferSelect;
export type DeliveryRow = typeof d.$inferSelect;

export type ActionFilter = {
  status?: string | undefined;
  type?: string | undefined;
  requestedBy?: string | undefined;
  createdFrom?: Date | undefined;
  createdTo?: Date | undefined;
};

export const actionsRepo = (db: Executor) => ({
  insert: async (row: ActionRow, ex: Executor = db): Promise<ActionRow> => {
    const [inserted] = await ex.insert(r).values(row).returning();
    return inserted!;
  },
  get: async (id: string, ex: Executor = db): Promise<ActionRow | undefined> => {
    const [row] = await ex.select().from(r).where(eq(r.id, id)).limit(1);
    return row;
  },
  list: async (filter: ActionFilter, limit: number, after: TimeIdCursor | undefined, ex: Executor = db) => {
    const where: SQL[] = [];
    if (filter.status) where.push(eq(r.status, filter.status));
    if (filter.type) where.push(eq(r.actionType, filter.type));
    if (filter.requestedBy) where.push(sql`(${r.requestedBy} = ${filter.requestedBy} OR ${r.requestedById} = ${filter.requestedBy})`);
    if (filter.createdFrom) where.push(gte(r.createdAt, filter.createdFrom));
    if (filter.createdTo) where.push(lte(r.createdAt, filter.createdTo));
    if (after) where.push(olderThan(r.createdAt, r.id, after));
    return ex
      .select()
      .from(r)
      .where(where.length ? and(...where) : undefined)
      .orderBy(...newestFirst(r.createdAt, r.id))
      .limit(limit);
  },
  /** The one way a request changes state: only from one of `from`; undefined when another caller won. */
  transition: async (id: string, from: readonly string[], set: Partial<ActionRow>, ex: Executor = db): Promise<ActionRow | undefined> => {
    const [row] = await ex
      .update(r)
      .set(set)
      .where(and(eq(r.id, id), inArray(r.status, [...from])))
      .returning();
    return row;
  },
  /**
   * Counts one approval of a pending request and makes it approved when this is the last one needed,
   * in one statement: concurrent approvers serialise on the row lock and each sees the count so far.
   */
  countApproval: async (id: string, now: Date, approverName: string, ex: Executor = db): Promise<ActionRow | undefined> => {
    const [row] = await ex
      .update(r)
      .set({
        approvalsCount: sql`${r.approvalsCount} + 1`,
        status: sql`CASE WHEN ${r.approvalsCount} + 1 >= ${r.approvalsRequired} THEN 'approved' ELSE ${r.status} END`,
        approvedAt: sql`CASE WHEN ${r.approvalsCount} + 1 >= ${r.approvalsRequired} THEN ${now}::timestamptz ELSE ${r.approvedAt} END`,
        approvedBy: sql`CASE WHEN ${r.approvedBy} IS NULL THEN ${approverName} ELSE ${r.approvedBy} || ', ' || ${approverName} END`,
        updatedAt: now,
      })
      .where(and(eq(r.id, id), eq(r.status, "pending")))
      .returning();
    return row;
  },
  /** Pending requests whose time to live has passed become expired (at most `max`); returns them. */
  expireDue: async (now: Date, max: number, ex: Executor = db, only?: string): Promise<ActionRow[]> => {
    const due = and(eq(r.status, "pending"), lte(r.expiresAt, now), only ? eq(r.id, only) : undefined);
    const ids = ex.select({ id: r.id }).from(r).where(due).limit(max);
    return ex
      .update(r)
      .set({ status: "expired", closedAt: sql`${r.expiresAt}`, closedBy: "system:expiry", updatedAt: now })
      .where(and(sql`${r.id} IN ${ids}`, due))
      .returning();
  },
  /** The open (pending or approved) request holding `openKey`, if any. */
  findOpenByKey: async (openKey: string, ex: Executor = db): Promise<ActionRow | undefined> => {
    const [row] = await ex
      .select()
      .from(r)
      .where(and(eq(r.openKey, openKey), inArray(r.status, ["pending", "approved"])))
      .limit(1);
    return row;
  },
  /** Pending requests per action type (partial index action_requests_pending_type). */
  pendingByType: async (ex: Executor = db): Promise<{ type: string; count: number }[]> =>
    ex
      .select({ type: r.actionType, count: sql<number>`count(*)::int` })
      .from(r)
      .where(eq(r.status, "pending"))
      .groupBy(r.actionType),
  insertApproval: async (row: ApprovalRow, ex: Executor = db) => void (await ex.insert(actionApprovals).values(row)),
  approvals: async (requestId: string, ex: Executor = db): Promise<ApprovalRow[]> =>
    ex.select().from(actionApprovals).where(eq(actionApprovals.requestId, requestId)).orderBy(asc(actionApprovals.signedAt), asc(actionApprovals.id)),
  findApproval: async (requestId: string, approverKey: string, ex: Executor = db): Promise<ApprovalRow | undefined> => {
    const [row] = await ex
      .select()
      .from(actionApprovals)
      .where(and(eq(actionApprovals.requestId, requestId), eq(actionApprovals.approverKey, approverKey)))
      .limit(1);
    return row;
  },
  insertHistory: async (row: HistoryRow, ex: Executor = db) => void (await ex.insert(actionHistory).values(row)),
  history: async (requestId: string, ex: Executor = db): Promise<HistoryRow[]> =>
    ex.select().from(actionHistory).where(eq(actionHistory.requestId, requestId)).orderBy(asc(actionHistory.at), asc(actionHistory.id)),

  insertDeliveries: async (rows: DeliveryRow[], ex: Executor = db) => {
    if (rows.length) await ex.insert(d).values(rows);
  },
  deliveries: async (requestId: string, ex: Executor = db): Promise<DeliveryRow[]> =>
    ex.select().from(d).where(eq(d.requestId, requestId)).orderBy(asc(d.createdAt), asc(d.id)),
  /**
   * Claims due deliveries by pushing their next attempt past a lease, so two nodes (or two loops)
   * never send the same attempt; a node that dies mid-send leaves it to be retried after the lease.
   */
  claimDue: async (now: Date, leaseUntil: Date, max: number, ex: Executor = db): Promise<DeliveryRow[]> => {
    const due = and(eq(d.status, "pending"), lte(d.nextAttemptAt, now));
    const ids = ex.select({ id: d.id }).from(d).where(due).orderBy(asc(d.nextAttemptAt)).limit(max).for("update", { skipLocked: true });
    return ex
      .update(d)
      .set({ nextAttemptAt: leaseUntil })
      .where(and(sql`${d.id} IN ${ids}`, due))
      .returning();
  },
  recordAttempt: async (
    id: string,
    attempt: { at: string; status_code: number | null; error: string | null; duration_ms: number },
    next: { status: "pending" | "delivered" | "failed"; nextAttemptAt: Date; deliveredAt: Date | null },
    ex: Executor = db,
  ) =>
    void (await ex
      .update(d)
      .set({
        attempts: sql`${d.attempts} + 1`,
        attemptLog: sql`${d.attemptLog} || ${JSON.stringify([attempt])}::jsonb`,
        status: next.status,
        nextAttemptAt: next.nextAttemptAt,
        deliveredAt: next.deliveredAt,
      })
      .where(eq(d.id, id))),
  nextDueAt: async (ex: Executor = db): Promise<Date | undefined> => {
    const [row] = await ex.select({ at: d.nextAttemptAt }).from(d).where(eq(d.status, "pending")).orderBy(asc(d.nextAttemptAt)).limit(1);
    return row?.at;
  },
});
export type ActionsRepo = ReturnType<typeof actionsRepo>;
