// SQL for users and API keys. Every method takes an optional executor so callers compose writes
// with their audit entry in one transaction.
import { and, eq, sql } from "drizzle-orm";
import type { Executor } from "../../db/client.ts";
import { apiKeys, users } from "./identity.tables.ts";

export type UserRow = typeof users.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;

export const identityRepo = (db: Executor) => ({
  countUsers: async (ex: Executor = db): Promise<number> => {
    const [row] = await ex.select({ n: sql<number>`count(*)::int` }).from(users);
    return row?.n ?? 0;
  },
  insertUser: async (row: UserRow, ex: Executor = db) => {
    await ex.insert(users).values(row);
  },
  insertApiKey: async (row: ApiKeyRow, ex: Executor = db) => {
    await ex.insert(apiKeys).values(row);
  },
  /** The key with its owner, by the hash of the presented secret. */
  findKeyByHash: async (keyHash: string, ex: Executor = db): Promise<{ key: ApiKeyRow; user: UserRow } | undefined> => {
    const [row] = await ex
      .select({ key: apiKeys, user: users })
      .from(apiKeys)
      .innerJoin(users, eq(apiKeys.userId, users.id))
      .where(and(eq(apiKeys.keyHash, keyHash)))
      .limit(1);
    return row;
  },
});
export type IdentityRepo = ReturnType<typeof identityRepo>;
