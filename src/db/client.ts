// Database access for both backends: embedded PGlite (one process, data dir) or PostgreSQL (a pool).
// Everything above this file speaks one PostgreSQL dialect through drizzle; only migrations and
// LISTEN need the raw clients, and they go through the small `raw` interface here.
import { PGlite } from "@electric-sql/pglite";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from "drizzle-orm/pg-core";
import type { ExtractTablesWithRelations } from "drizzle-orm";
import pg from "pg";
import { acquirePidLock, type PidLock } from "./pid-lock.ts";

export type Db = PgDatabase<PgQueryResultHKT, Record<string, never>>;
export type Tx = PgTransaction<PgQueryResultHKT, Record<string, never>, ExtractTablesWithRelations<Record<string, never>>>;
/** Either the database or an open transaction: every repo method takes one. */
export type Executor = Db | Tx;

export type RawQuery = <T = Record<string, unknown>>(text: string, params?: unknown[]) => Promise<T[]>;
export type RawTransaction = { query: RawQuery; exec(text: string): Promise<void> };

export type Database = {
  readonly kind: "pglite" | "postgres";
  readonly orm: Db;
  /** Runs `fn` in one transaction; throws roll it back. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Raw SQL transaction for migrations (multi-statement scripts). */
  rawTransaction<T>(fn: (tx: RawTransaction) => Promise<T>): Promise<T>;
  query: RawQuery;
  /** Subscribes to NOTIFY on `channel`; `onReconnect` runs after a lost connection came back (messages may be lost). */
  listen(channel: string, onMessage: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
};

// Callbacks to run once a transaction has committed (caches that must only ever hold committed state).
const afterCommitHooks = new WeakMap<object, (() => void)[]>();

/** Runs `fn` after `tx` commits; never if it rolls back. */
export const afterCommit = (tx: Tx, fn: () => void): void => {
  const hooks = afterCommitHooks.get(tx);
  if (!hooks) throw new Error("afterCommit needs a transaction opened with Database.transaction");
  hooks.push(fn);
};

const withAfterCommit =
  (orm: Db) =>
  async <T>(fn: (tx: Tx) => Promise<T>): Promise<T> => {
    const hooks: (() => void)[] = [];
    const result = await orm.transaction(async (tx) => {
      afterCommitHooks.set(tx, hooks);
      return fn(tx);
    });
    for (const hook of hooks) hook();
    return result;
  };

export type OpenOptions = { databaseUrl?: string | undefined; dataDir?: string | undefined; poolSize?: number };

/** Opens PostgreSQL when a URL is given, else PGlite in `dataDir` (guarded by a PID lock), else in memory. */
export const openDatabase = async (options: OpenOptions): Promise<Database> => {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options.poolSize ?? 10);
  return openPglite(options.dataDir);
};

const openPglite = async (dataDir: string | undefined): Promise<Database> => {
  let lock: PidLock | undefined;
  if (dataDir) lock = acquirePidLock(dataDir);
  let client: PGlite;
  try {
    client = await PGlite.create(dataDir ? `${dataDir}/pgdata` : undefined);
  } catch (error) {
    lock?.release();
    throw error;
  }
  const orm = drizzlePglite({ client }) as unknown as Db;
  const query: RawQuery = async <T>(text: string, params?: unknown[]) => (await client.query<T>(text, params)).rows;
  let closed = false;
  return {
    kind: "pglite",
    orm,
    transaction: withAfterCommit(orm),
    rawTransaction: (fn) =>
      client.transaction((tx) =>
        fn({
          query: async <T>(text: string, params?: unknown[]) => (await tx.query<T>(text, params)).rows,
          exec: async (text) => {
            await tx.exec(text);
          },
        }),
      ),
    query,
    listen: async (channel, onMessage) => client.listen(channel, onMessage),
    close: async () => {
      if (closed) return;
      closed = true;
      await client.close();
      lock?.release();
    },
  };
};

const openPostgres = async (url: string, poolSize: number): Promise<Database> => {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // An idle client losing its connection must not crash the process; the next checkout reconnects.
  pool.on("error", () => {});
  const orm = drizzlePg({ client: pool }) as unknown as Db;
  const query: RawQuery = async <T>(text: string, params?: unknown[]) =>
    (await pool.query(text, params as unknown[])).rows as T[];
  const listeners = new Set<{ stop(): Promise<void> }>();
  return {
    kind: "postgres",
    orm,
    transaction: withAfterCommit(orm),
    rawTransaction: async (fn) => {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn({
          query: async <T>(text: string, params?: unknown[]) => (await client.query(text, params as unknown[])).rows as T[],
          exec: async (text) => {
            await client.query(text);
          },
        });
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    query,
    listen: async (channel, onMessage, onReconnect) => {
      const listener = pgListener(url, channel, onMessage, onReconnect);
      await listener.ready;
      listeners.add(listener);
      return async () => {
        listeners.delete(listener);
        await listener.stop();
      };
    },
    close: async () => {
      await Promise.all([...listeners].map((l) => l.stop()));
      listeners.clear();
      await pool.end();
    },
  };
};

/**
 * A dedicated connection for LISTEN (pooled clients cannot hold one) that reconnects with backoff.
 * TCP keepalive makes a connection silently dropped by a NAT or load balancer fail, so it is noticed.
 */
const pgListener = (url: string, channel: string, onMessage: (payload: string) => void, onReconnect?: () => void) => {
  let stopped = false;
  let client: pg.Client | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let attempt = 0;
  const quoted = `"${channel.replaceAll('"', '""')}"`;
  const connect = async (isReconnect: boolean): Promise<void> => {
    const c = new pg.Client({ connectionString: url, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
    client = c;
    c.on("notification", (msg) => {
      if (msg.channel === channel) onMessage(msg.payload ?? "");
    });
    c.on("error", () => scheduleReconnect(c));
    c.on("end", () => scheduleReconnect(c));
    try {
      await c.connect();
      await c.query(`LISTEN ${quoted}`);
    } catch (error) {
      await c.end().catch(() => {});
      throw error;
    }
    if (stopped) {
      await c.end().catch(() => {});
      return;
    }
    attempt = 0;
    if (isReconnect) onReconnect?.();
  };
  const scheduleReconnect = (failed?: pg.Client) => {
    if (stopped || retryTimer || (failed && failed !== client)) return;
    client = undefined;
    failed?.end().catch(() => {});
    const delay = Math.min(30_000, 250 * 2 ** attempt++);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connect(true).catch(() => scheduleReconnect());
    }, delay);
    retryTimer.unref();
  };
  const ready = connect(false);
  return {
    ready,
    stop: async () => {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      await client?.end().catch(() => {});
    },
  };
};

/** Rows of a drizzle `execute` result, the same on both drivers. */
export const rowsOf = <T>(result: unknown): T[] => (result as { rows: T[] }).rows;
