// SQL for the single security policy row.
import { eq, sql } from "drizzle-orm";
import type { Executor } from "../../db/client.ts";
import { securityPolicy } from "./policy.tables.ts";

export type PolicyRow = typeof securityPolicy.$inferSelect;

export const policyRepo = (db: Executor) => ({
  /** `forUpdate` locks the row so concurrent updates apply one after the other with correct before/after. */
  get: async (ex: Executor = db, forUpdate = false): Promise<PolicyRow> => {
    const q = ex.select().from(securityPolicy).where(eq(securityPolicy.id, 1));
    const [row] = forUpdate ? await q.for("update") : await q;
    if (!row) throw new Error("security_policy row is missing: migrations were not applied");
    return row;
  },
  update: async (patch: Partial<Omit<PolicyRow, "id">>, ex: Executor = db): Promise<PolicyRow> => {
    const [row] = await ex.update(securityPolicy).set(patch).where(eq(securityPolicy.id, sql`1`)).returning();
    if (!row) throw new Error("security_policy row is missing");
    return row;
  },
});
export type PolicyRepo = ReturnType<typeof policyRepo>;
