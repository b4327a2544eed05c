// Keyset pagination shared by every list endpoint: `limit` (1..1000, default 50) and an opaque
// `cursor` that encodes the sort key of the last row returned, so pages stay stable under inserts.
import { z } from "zod";
import { validationError } from "./errors.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const paginationQuery = {
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(512).optional(),
};

export type Page<T> = { items: T[]; next_cursor: string | null };

export const pageSchema = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next_cursor: z.string().nullable() });

export type TimeIdCursor = { t: string; id: string };

export const encodeCursor = (c: TimeIdCursor) => Buffer.from(JSON.stringify([c.t, c.id])).toString("base64url");

export const decodeCursor = (cursor: string | undefined): TimeIdCursor | undefined => {
  if (cursor === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === "string" && typeof parsed[1] === "string") {
      const t = Date.parse(parsed[0]);
      // Only what this API hands out: an ISO time PostgreSQL can hold and a UUID.
      if (t >= Date.UTC(1970, 0, 1) && t < Date.UTC(9999, 0, 1) && UUID.test(parsed[1])) return { t: new Date(t).toISOString(), id: parsed[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw validationError([{ path: "cursor", message: "not a cursor returned by this endpoint" }]);
};

/** Given limit+1 rows fetched, cut to `limit` and compute the next cursor. */
export const toPage = <R, T>(rows: R[], limit: number, key: (row: R) => TimeIdCursor, map: (row: R) => T): Page<T> => {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return { items: pageRows.map(map), next_cursor: hasMore && last ? encodeCursor(key(last)) : null };
};
