// SQL for blocked entities. "Active" in every read means active AND not yet expired, so expiry is
// exact to the instant even before the sweep records it.
import { and, eq, gt, gte, ilike, isNull, lte, or, sql, type SQL } from "drizzle-orm";
import type { Executor } from "../../db/client.ts";
import { newestFirst, olderThan } from "../../db/keyset.ts";
import type { TimeIdCursor } from "../../lib/pagination.ts";
import { blockedEntities as b } from "./blocklist.tables.ts";
import type { EntityType } from "./blocklist.schemas.ts";

export type BlockRow = typeof b.$inferSelect;

export type BlockFilter = {
  type?: EntityType | undefined;
  active?: boolean | undefined;
  q?: string | undefined;
  createdFrom?: Date | undefined;
  createdTo?: Date | undefined;
};

const effectivelyActive = (now: Date): SQL => and(eq(b.active, true), or(isNull(b.expiresAt), gt(b.expiresAt, now)))!;

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export const blocklistRepo = (db: Executor) => ({
  insert: async (row: BlockRow, ex: Executor = db): Promise<BlockRow> => {
    const [inserted] = await ex.insert(b).values(row).returning();
    return inserted!;
  },
  get: async (id: string, ex: Executor = db): Promise<BlockRow | undefined> => {
    const [row] = await ex.select().from(b).where(eq(b.id, id)).limit(1);
    return row;
  },
  /** The row holding the one-active slot for (type, value), expired or not. */
  findActiveSlot: async (type: EntityType, value: string, ex: Executor = db): Promise<BlockRow | undefined> => {
    const [row] = await ex
      .select()
      .from(b)
      .where(and(eq(b.entityType, type), eq(b.value, value), eq(b.active, true)))
      .limit(1);
    return row;
  },
  list: async (filter: BlockFilter, now: Date, limit: number, after: TimeIdCursor | undefined, ex: Executor = db) => {
    const where: SQL[] = [];
    if (filter.type) where.push(eq(b.entityType, filter.type));
    if (filter.active === true) where.push(effectivelyActive(now));
    if (filter.active === false) where.push(or(eq(b.active, false), lte(b.expiresAt, now))!);
    if (filter.q) where.push(ilike(b.value, `%${escapeLike(filter.q)}%`));
    if (filter.createdFrom) where.push(gte(b.createdAt, filter.createdFrom));
    if (filter.createdTo) where.push(lte(b.createdAt, filter.createdTo));
    if (after) where.push(olderThan(b.createdAt, b.id, after));
    return ex
      .select()
      .from(b)
      .where(where.length ? and(...where) : undefined)
      .orderBy(...newestFirst(b.createdAt, b.id))
      .limit(limit);
  },
  /** Conditional: only a block that is still effectively active is deactivated (one winner under concurrency). */
  deactivate: async (id: string, at: Date, by: string, ex: Executor = db): Promise<BlockRow | undefined> => {
    const [row] = await ex
      .update(b)
      .set({ active: false, deactivatedAt: at, deactivatedBy: by })
      .where(and(eq(b.id, id), effectivelyActive(at)))
      .returning();
    return row;
  },
  /** Marks blocks whose expiry has passed as inactive, dated at their expiry; returns them for the audit log. */
  recordExpired: async (now: Date, max: number, ex: Executor = db, only?: { type: EntityType; value: string }): Promise<BlockRow[]> => {
    const due = and(eq(b.active, true), lte(b.expiresAt, now), only ? and(eq(b.entityType, only.type), eq(b.value, only.value)) : undefined);
    const ids = ex.select({ id: b.id }).from(b).where(due).limit(max);
    return ex
      .update(b)
      .set({ active: false, deactivatedAt: sql`${b.expiresAt}`, deactivatedBy: "system:expiry" })
      .where(and(sql`${b.id} IN ${ids}`, due))
      .returning();
  },
  loadActive: async (now: Date, ex: Executor = db): Promise<BlockRow[]> => ex.select().from(b).where(effectivelyActive(now)),
});
export type BlocklistRepo = ReturnType<typeof blocklistRepo>;
