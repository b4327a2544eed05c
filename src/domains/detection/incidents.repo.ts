// SQL for incidents. The open incident of a (source, threat) is read FOR UPDATE so that concurrent
// writers (two nodes, or the sentinel and a CrowdSec alert) serialise on it; the partial unique index
// makes a second open one impossible.
import { and, eq, sql, type SQL } from "drizzle-orm";
import type { Executor } from "../../db/client.ts";
import { newestFirst, olderThan } from "../../db/keyset.ts";
import type { TimeIdCursor } from "../../lib/pagination.ts";
import { incidents as i } from "./incidents.tables.ts";

export type IncidentRow = typeof i.$inferSelect;

export type IncidentFilter = { status?: string | undefined; severity?: string | undefined; sourceIp?: string | undefined; threat?: string | undefined };

export const incidentsRepo = (db: Executor) => ({
  get: async (id: string, ex: Executor = db): Promise<IncidentRow | undefined> => {
    const [row] = await ex.select().from(i).where(eq(i.id, id)).limit(1);
    return row;
  },
  /** The open incident of (source, threat), row-locked for the caller's transaction. */
  lockOpen: async (sourceIp: string, threat: string, ex: Executor): Promise<IncidentRow | undefined> => {
    const [row] = await ex
      .select()
      .from(i)
      .where(and(eq(i.sourceIp, sourceIp), eq(i.threat, threat), eq(i.status, "open")))
      .limit(1)
      .for("update");
    return row;
  },
  /** Inserts unless another writer opened one meanwhile (then undefined: lock and update that one). */
  insertOpen: async (row: IncidentRow, ex: Executor): Promise<IncidentRow | undefined> => {
    const [inserted] = await ex
      .insert(i)
      .values(row)
      .onConflictDoNothing({ target: [i.sourceIp, i.threat], where: sql`status = 'open'` })
      .returning();
    return inserted;
  },
  update: async (id: string, set: Partial<IncidentRow>, ex: Executor = db): Promise<IncidentRow | undefined> => {
    const [row] = await ex.update(i).set(set).where(eq(i.id, id)).returning();
    return row;
  },
  /** Conditional: only an open incident is resolved (one winner under concurrency). */
  resolve: async (id: string, at: Date, by: string, ex: Executor = db): Promise<IncidentRow | undefined> => {
    const [row] = await ex
      .update(i)
      .set({ status: "resolved", resolvedAt: at, resolvedBy: by, updatedAt: at })
      .where(and(eq(i.id, id), eq(i.status, "open")))
      .returning();
    return row;
  },
  list: async (filter: IncidentFilter, limit: number, after: TimeIdCursor | undefined, ex: Executor = db) => {
    const where: SQL[] = [];
    if (filter.status) where.push(eq(i.status, filter.status));
    if (filter.severity) where.push(eq(i.severity, filter.severity));
    if (filter.sourceIp) where.push(eq(i.sourceIp, filter.sourceIp));
    if (filter.threat) where.push(eq(i.threat, filter.threat));
    if (after) where.push(olderThan(i.openedAt, i.id, after));
    return ex
      .select()
      .from(i)
      .where(where.length ? and(...where) : undefined)
      .orderBy(...newestFirst(i.openedAt, i.id))
      .limit(limit);
  },
  /** Open incidents per severity, from the partial index incidents_open. */
  openBySeverity: async (ex: Executor = db): Promise<{ severity: string; count: number; lastUpdate: Date | string | null }[]> =>
    ex
      .select({ severity: i.severity, count: sql<number>`count(*)::int`, lastUpdate: sql<Date | string | null>`max(${i.updatedAt})` })
      .from(i)
      .where(eq(i.status, "open"))
      .groupBy(i.severity),
});
export type IncidentsRepo = ReturnType<typeof incidentsRepo>;
