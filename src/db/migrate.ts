// Applies the SQL migrations in src/db/migrations in order, once each, recording a checksum so an
// edited migration that already ran is caught instead of silently diverging. Several nodes starting
// at once on PostgreSQL serialise on an advisory lock.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Database } from "./client.ts";

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));
// Arbitrary constant identifying the migration lock among advisory locks.
const MIGRATION_LOCK_KEY = 7_310_001;

export type Migration = { version: string; name: string; sql: string; checksum: string };

// The bundled migrations never change while the process runs; /readyz asks on every probe.
let bundled: Migration[] | undefined;
const bundledMigrations = (): Migration[] => (bundled ??= loadMigrations());

export const loadMigrations = (dir = MIGRATIONS_DIR): Migration[] =>
  readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const sql = readFileSync(`${dir}/${file}`, "utf8");
      return {
        version: file.slice(0, 4),
        name: file.slice(5, -4),
        sql,
        checksum: createHash("sha256").update(sql).digest("hex"),
      };
    });

export class MigrationError extends Error {
  override name = "MigrationError";
}

const ensureTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version text PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/** Applies pending migrations; returns the versions applied now. */
export const migrate = async (db: Database, migrations = bundledMigrations()): Promise<string[]> =>
  db.rawTransaction(async (tx) => {
    if (db.kind === "postgres") await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await tx.exec(ensureTable);
    const applied = new Map(
      (await tx.query<{ version: string; checksum: string }>("SELECT version, checksum FROM schema_migrations")).map(
        (r) => [r.version, r.checksum],
      ),
    );
    const done: string[] = [];
    for (const m of migrations) {
      const checksum = applied.get(m.version);
      if (checksum !== undefined) {
        if (checksum !== m.checksum)
          throw new MigrationError(`migration ${m.version}_${m.name} was changed after it was applied; add a new migration instead`);
        continue;
      }
      await tx.exec(m.sql);
      await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [m.version, m.name, m.checksum]);
      done.push(m.version);
    }
    return done;
  });

/** Pending migration versions; empty means the schema is current (used by /readyz). */
export const pendingMigrations = async (db: Database, migrations = bundledMigrations()): Promise<string[]> => {
  const rows = await db
    .query<{ version: string }>("SELECT version FROM schema_migrations")
    .catch(() => [] as { version: string }[]);
  const applied = new Set(rows.map((r) => r.version));
  return migrations.filter((m) => !applied.has(m.version)).map((m) => m.version);
};
