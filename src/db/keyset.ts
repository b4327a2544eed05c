// The SQL side of keyset pagination for newest-first lists ordered by (created_at, id): the
// predicate for "after this cursor" and the matching order, so every list pages the same way.
import { desc, sql, type AnyColumn, type SQL } from "drizzle-orm";
import type { TimeIdCursor } from "../lib/pagination.ts";

/** Rows strictly older than the cursor's row, in (created_at, id) order. */
export const olderThan = (createdAt: AnyColumn, id: AnyColumn, after: TimeIdCursor): SQL =>
  sql`(${createdAt}, ${id}) < (${new Date(after.t)}, ${after.id}::uuid)`;

export const newestFirst = (createdAt: AnyColumn, id: AnyColumn) => [desc(createdAt), desc(id)] as const;
