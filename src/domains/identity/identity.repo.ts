// SQL for users, API keys, sessions, refresh tokens and in-flight OIDC logins. Every method takes
// an optional executor so callers compose writes with their audit entry in one transaction.
import { and, desc, eq, gt, isNull, lt, sql } from "drizzle-orm";
import type { Executor } from "../../db/client.ts";
import { apiKeys, oidcLogins, refreshTokens, sessions, users } from "./identity.tables.ts";

export type UserRow = typeof users.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type SessionRow = typeof sessions.$inferSelect;
export type RefreshTokenRow = typeof refreshTokens.$inferSelect;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const identityRepo = (db: Executor) => ({
  countUsers: async (ex: Executor = db): Promise<number> => {
    const [row] = await ex.select({ n: sql<number>`count(*)::int` }).from(users);
    return row?.n ?? 0;
  },
  insertUser: async (row: typeof users.$inferInsert, ex: Executor = db) => {
    await ex.insert(users).values(row);
  },
  /** By id (a UUID) or by username, case-insensitively. */
  findUser: async (ref: string, ex: Executor = db, forUpdate = false): Promise<UserRow | undefined> => {
    const where = UUID.test(ref) ? eq(users.id, ref) : sql`lower(${users.username}) = lower(${ref})`;
    const q = ex.select().from(users).where(where).limit(1);
    const [row] = forUpdate ? await q.for("update") : await q;
    return row;
  },
  /** By username only (case-insensitively): a login names a user, never a user id. */
  findUserByUsername: async (username: string, ex: Executor = db): Promise<UserRow | undefined> => {
    const [row] = await ex.select().from(users).where(sql`lower(${users.username}) = lower(${username})`).limit(1);
    return row;
  },
  findUserByOidc: async (issuer: string, subject: string, ex: Executor = db): Promise<UserRow | undefined> => {
    const [row] = await ex.select().from(users).where(and(eq(users.oidcIssuer, issuer), eq(users.oidcSubject, subject))).limit(1);
    return row;
  },
  listUsers: async (ex: Executor = db): Promise<UserRow[]> => ex.select().from(users).orderBy(users.username),
  updateUser: async (id: string, patch: Partial<typeof users.$inferInsert>, ex: Executor = db): Promise<UserRow | undefined> => {
    const [row] = await ex.update(users).set(patch).where(eq(users.id, id)).returning();
    return row;
  },
  /**
   * Locks every enabled admin row (in id order, so concurrent callers cannot deadlock) and returns
   * their ids as they are after any concurrent change commits: the last-admin guard counts on this.
   */
  lockActiveAdmins: async (ex: Executor = db): Promise<string[]> => {
    const rows = await ex
      .select({ id: users.id })
      .from(users)
      .where(and(eq(users.role, "admin"), eq(users.disabled, false)))
      .orderBy(users.id)
      .for("update");
    return rows.map((r) => r.id);
  },
  /** Counts one more failed login atomically and returns the new count. */
  recordFailedLogin: async (id: string, ex: Executor = db): Promise<number> => {
    const [row] = await ex
      .update(users)
      .set({ failedLogins: sql`${users.failedLogins} + 1` })
      .where(eq(users.id, id))
      .returning({ n: users.failedLogins });
    return row?.n ?? 0;
  },

  insertApiKey: async (row: typeof apiKeys.$inferInsert, ex: Executor = db) => {
    await ex.insert(apiKeys).values(row);
  },
  /** The key with its owner, by the hash of the presented secret. */
  findKeyByHash: async (keyHash: string, ex: Executor = db): Promise<{ key: ApiKeyRow; user: UserRow } | undefined> => {
    const [row] = await ex.select({ key: apiKeys, user: users }).from(apiKeys).innerJoin(users, eq(apiKeys.userId, users.id)).where(eq(apiKeys.keyHash, keyHash)).limit(1);
    return row;
  },
  findKey: async (id: string, ex: Executor = db): Promise<ApiKeyRow | undefined> => {
    if (!UUID.test(id)) return undefined;
    const [row] = await ex.select().from(apiKeys).where(eq(apiKeys.id, id)).limit(1);
    return row;
  },
  listKeys: async (userId: string | undefined, ex: Executor = db): Promise<ApiKeyRow[]> =>
    ex
      .select()
      .from(apiKeys)
      .where(userId ? eq(apiKeys.userId, userId) : undefined)
      .orderBy(desc(apiKeys.createdAt)),
  revokeKey: async (id: string, at: Date, by: string, ex: Executor = db): Promise<ApiKeyRow | undefined> => {
    const [row] = await ex
      .update(apiKeys)
      .set({ revokedAt: at, revokedBy: by })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning();
    return row;
  },
  touchKey: async (id: string, at: Date, ip: string | null, ex: Executor = db) => {
    await ex.update(apiKeys).set({ lastUsedAt: at, lastUsedIp: ip }).where(eq(apiKeys.id, id));
  },

  insertSession: async (row: typeof sessions.$inferInsert, ex: Executor = db) => {
    await ex.insert(sessions).values(row);
  },
  findSession: async (id: string, ex: Executor = db): Promise<{ session: SessionRow; user: UserRow } | undefined> => {
    if (!UUID.test(id)) return undefined;
    const [row] = await ex.select({ session: sessions, user: users }).from(sessions).innerJoin(users, eq(sessions.userId, users.id)).where(eq(sessions.id, id)).limit(1);
    return row;
  },
  listSessions: async (userId: string, activeAt: Date | undefined, ex: Executor = db): Promise<SessionRow[]> =>
    ex
      .select()
      .from(sessions)
      .where(and(eq(sessions.userId, userId), activeAt ? and(isNull(sessions.revokedAt), gt(sessions.expiresAt, activeAt)) : undefined))
      .orderBy(desc(sessions.createdAt))
      .limit(500),
  /** Revokes sessions (one, or all of a user's that are still open); returns the ids revoked. */
  revokeSessions: async (
    where: { sessionId?: string; userId?: string; exceptSessionId?: string },
    at: Date,
    by: string,
    reason: string,
    ex: Executor = db,
  ): Promise<string[]> => {
    const conditions = [isNull(sessions.revokedAt)];
    if (where.sessionId) conditions.push(eq(sessions.id, where.sessionId));
    if (where.userId) conditions.push(eq(sessions.userId, where.userId));
    if (where.exceptSessionId) conditions.push(sql`${sessions.id} <> ${where.exceptSessionId}`);
    const rows = await ex
      .update(sessions)
      .set({ revokedAt: at, revokedBy: by, revokedReason: reason })
      .where(and(...conditions))
      .returning({ id: sessions.id });
    return rows.map((r) => r.id);
  },
  touchSession: async (id: string, at: Date, ip: string | null, ex: Executor = db) => {
    await ex.update(sessions).set({ lastSeenAt: at, ip }).where(eq(sessions.id, id));
  },

  insertRefreshToken: async (row: typeof refreshTokens.$inferInsert, ex: Executor = db) => {
    await ex.insert(refreshTokens).values(row);
  },
  findRefreshToken: async (tokenHash: string, ex: Executor = db): Promise<RefreshTokenRow | undefined> => {
    const [row] = await ex.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash)).limit(1);
    return row;
  },
  /** Marks a token used, only if it still is the current one: of two concurrent refreshes, one wins. */
  rotateRefreshToken: async (id: string, at: Date, ex: Executor = db): Promise<boolean> => {
    const rows = await ex
      .update(refreshTokens)
      .set({ rotatedAt: at })
      .where(and(eq(refreshTokens.id, id), isNull(refreshTokens.rotatedAt)))
      .returning({ id: refreshTokens.id });
    return rows.length === 1;
  },

  insertOidcLogin: async (row: typeof oidcLogins.$inferInsert, ex: Executor = db) => {
    await ex.insert(oidcLogins).values(row);
  },
  /** Takes (reads and deletes) an in-flight login: a state is good for one callback only. */
  takeOidcLogin: async (stateHash: string, ex: Executor = db) => {
    const [row] = await ex.delete(oidcLogins).where(eq(oidcLogins.stateHash, stateHash)).returning();
    return row;
  },
  pruneOidcLogins: async (before: Date, ex: Executor = db) => {
    await ex.delete(oidcLogins).where(lt(oidcLogins.expiresAt, before));
  },
});
export type IdentityRepo = ReturnType<typeof identityRepo>;
