// SQL for rule versions and recorded decisions. Lifecycle updates are conditional on the status they
// leave, so of two concurrent transitions exactly one finds the row in that status.
import { and, asc, eq, gte, inArray, lt, max, type SQL } from "drizzle-orm";
import type { Executor } from "../../db/client.ts";
import { newestFirst, olderThan } from "../../db/keyset.ts";
import type { TimeIdCursor } from "../../lib/pagination.ts";
import { ruleDecisions as d, rules as r } from "./rules.tables.ts";

export type RuleRow = typeof r.$inferSelect;
export type DecisionRow = typeof d.$inferSelect;
export type RuleStatus = "DRAFT" | "REVIEW" | "ACTIVE" | "RETIRED" | "REJECTED";

export type RuleFilter = { name?: string | undefined; status?: RuleStatus | undefined; target?: string | undefined };

export const rulesRepo = (db: Executor) => ({
  insert: async (row: RuleRow, ex: Executor = db): Promise<RuleRow> => {
    const [inserted] = await ex.insert(r).values(row).returning();
    return inserted!;
  },
  get: async (name: string, version: number, ex: Executor = db, forUpdate = false): Promise<RuleRow | undefined> => {
    const q = ex.select().from(r).where(and(eq(r.name, name), eq(r.version, version))).limit(1);
    const [row] = forUpdate ? await q.for("update") : await q;
    return row;
  },
  versionsOf: async (name: string, ex: Executor = db): Promise<RuleRow[]> => ex.select().from(r).where(eq(r.name, name)).orderBy(asc(r.version)),
  latestVersion: async (name: string, ex: Executor = db): Promise<number> => {
    const [row] = await ex.select({ v: max(r.version) }).from(r).where(eq(r.name, name));
    return row?.v ?? 0;
  },
  findByStatus: async (name: string, status: RuleStatus, ex: Executor = db): Promise<RuleRow | undefined> => {
    const [row] = await ex.select().from(r).where(and(eq(r.name, name), eq(r.status, status))).limit(1);
    return row;
  },
  list: async (filter: RuleFilter, limit: number, after: TimeIdCursor | undefined, ex: Executor = db): Promise<RuleRow[]> => {
    const where: SQL[] = [];
    if (filter.name) where.push(eq(r.name, filter.name));
    if (filter.status) where.push(eq(r.status, filter.status));
    if (filter.target) where.push(eq(r.target, filter.target));
    if (after) where.push(olderThan(r.createdAt, r.id, after));
    return ex
      .select()
      .from(r)
      .where(where.length ? and(...where) : undefined)
      .orderBy(...newestFirst(r.createdAt, r.id))
      .limit(limit);
  },
  active: async (ex: Executor = db): Promise<RuleRow[]> => ex.select().from(r).where(eq(r.status, "ACTIVE")).orderBy(asc(r.name)),
  /** Versions worth re-validating after an upgrade: everything not retired or rejected. */
  live: async (ex: Executor = db): Promise<RuleRow[]> =>
    ex.select().from(r).where(inArray(r.status, ["DRAFT", "REVIEW", "ACTIVE"])).orderBy(asc(r.name), asc(r.version)),
  /** Sets fields on the version only if it is still in `from`; undefined when another transition won. */
  transition: async (id: string, from: RuleStatus | RuleStatus[], patch: Partial<RuleRow>, ex: Executor = db): Promise<RuleRow | undefined> => {
    const froms = Array.isArray(from) ? from : [from];
    const [row] = await ex
      .update(r)
      .set(patch)
      .where(and(eq(r.id, id), inArray(r.status, froms)))
      .returning();
    return row;
  },
  insertDecision: async (row: DecisionRow, ex: Executor = db): Promise<void> => {
    await ex.insert(d).values(row);
  },
  getDecision: async (id: string, ex: Executor = db): Promise<DecisionRow | undefined> => {
    const [row] = await ex.select().from(d).where(eq(d.id, id)).limit(1);
    return row;
  },
  /** Decisions in [since, until), oldest first, at most `limit`. */
  decisionsBetween: async (since: Date, until: Date, limit: number, target?: string, ex: Executor = db): Promise<DecisionRow[]> =>
    ex
      .select()
      .from(d)
      .where(and(gte(d.decidedAt, since), lt(d.decidedAt, until), target ? eq(d.target, target) : undefined))
      .orderBy(asc(d.decidedAt), asc(d.id))
      .limit(limit),
});
export type RulesRepo = ReturnType<typeof rulesRepo>;
