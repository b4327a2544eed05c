// Test harness: a real database per suite (in-memory PGlite, and a fresh PostgreSQL database when
// PORTCULLIS_TEST_DATABASE_URL is set) and an app built on it with a known admin token.
// Under CI=true a missing PostgreSQL URL is an error, not a silent skip.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { describe, it } from "vitest";
import { Writable } from "node:stream";
import { createScratchDatabase } from "./scratch-db.ts";
import type { FastifyInstance } from "fastify";
import { loadConfig, type Config } from "../../src/config/index.ts";
import { openDatabase, type Database } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { buildApp } from "../../src/app/build.ts";
import type { Clock } from "../../src/lib/time.ts";
import { recordCredentials, rememberSecret, watchLogs } from "./secret-scan.ts";

export type DbKind = "pglite" | "postgres";

const pgUrl = process.env.PORTCULLIS_TEST_DATABASE_URL;
if (process.env.CI === "true" && !pgUrl) {
  throw new Error("CI=true but PORTCULLIS_TEST_DATABASE_URL is not set: the PostgreSQL suite would be skipped");
}

/** The database kinds every integration suite runs against. */
export const DB_KINDS: DbKind[] = pgUrl ? ["pglite", "postgres"] : ["pglite"];

/** A fresh, empty database; close() drops it (PostgreSQL) or discards it (PGlite). */
export const openTestDatabase = async (kind: DbKind): Promise<Database & { url?: string }> => {
  if (kind === "pglite") return openDatabase({});
  const scratch = await createScratchDatabase(pgUrl!, "pc_test");
  const db = await openDatabase({ databaseUrl: scratch.url, poolSize: 12 });
  return {
    ...db,
    url: scratch.url,
    close: async () => {
      await db.close();
      await scratch.drop();
    },
  };
};

// One audit signing key per test process, passed through config so no test writes a key file.
export const TEST_SIGNING_KEY = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
export const TEST_JWT_KEY = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
export const TEST_CREDENTIAL_KEY = `test:${randomBytes(32).toString("base64")}`;

export const testConfig = (flags: Record<string, unknown> = {}): Config =>
  loadConfig({
    // Rate limits are off unless a suite turns them on: suites make many requests as one principal.
    flags: {
      // info: request lines are logged too, so the leak scan (test/setup) sees what production would.
      "log.level": "info",
      "signing.privateKey": TEST_SIGNING_KEY,
      "auth.jwtPrivateKey": TEST_JWT_KEY,
      "sensors.credentialKeys": [TEST_CREDENTIAL_KEY],
      "audit.origin": "test.portcullis/audit",
      "rateLimit.enabled": false,
      ...flags,
    },
    env: {},
    cwd: process.cwd(),
  }).config;

export const ADMIN_TOKEN = "pc_test-admin-token-0123456789abcdefghijkl";

export type TestApp = {
  app: FastifyInstance;
  db: Database & { url?: string };
  adminToken: string;
  /** Every log line the app wrote (JSON), for leak scans. */
  logs: string[];
  auth: (token?: string) => { authorization: string };
  close(): Promise<void>;
};

export const createTestApp = async (
  kind: DbKind,
  options: { config?: Record<string, unknown>; clock?: Clock } = {},
): Promise<TestApp> => {
  const db = await openTestDatabase(kind);
  await migrate(db);
  const logs: string[] = [];
  const logStream = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  watchLogs(logs);
  const app = await buildApp({ config: testConfig(options.config), db, logStream, ...(options.clock ? { clock: options.clock } : {}) });
  recordCredentials(app);
  rememberSecret(ADMIN_TOKEN);
  await app.services.identity.bootstrapAdmin(ADMIN_TOKEN);
  return {
    app,
    db,
    adminToken: ADMIN_TOKEN,
    logs,
    auth: (token = ADMIN_TOKEN) => ({ authorization: `Bearer ${token}` }),
    close: async () => {
      await app.close();
      await db.close();
    },
  };
};

/** A user with `role` and an API key for it, written through the identity tables (real storage). */
export const createKeyForRole = async (db: Database, role: "viewer" | "analyst" | "approver" | "executor" | "admin") => {
  const { identityRepo } = await import("../../src/domains/identity/identity.repo.ts");
  const { sha256Hex } = await import("../../src/lib/crypto.ts");
  const { generateApiKey, visiblePrefix } = await import("../../src/domains/identity/identity.service.ts");
  const repo = identityRepo(db.orm);
  const userId = crypto.randomUUID();
  const token = generateApiKey();
  const now = new Date();
  await repo.insertUser({ id: userId, username: `${role}-${userId.slice(0, 8)}`, role, disabled: false, createdAt: now, createdBy: "test" });
  await repo.insertApiKey({
    id: crypto.randomUUID(),
    prefix: visiblePrefix(token),
    keyHash: sha256Hex(token),
    name: `${role} test key`,
    userId,
    role,
    createdAt: now,
    createdBy: "test",
    expiresAt: null,
    revokedAt: null,
    revokedBy: null,
  });
  rememberSecret(token);
  return { token, userId, prefix: visiblePrefix(token) };
};

/**
 * A suite that needs a real PostgreSQL server (two nodes, real concurrency). Without
 * PORTCULLIS_TEST_DATABASE_URL it is reported as skipped, never as a failure or a pass; under
 * CI=true the URL is mandatory (see above), so CI always runs it.
 */
export const describePostgres = (name: string, fn: () => void) => {
  if (DB_KINDS.includes("postgres")) describe(name, fn);
  else describe.skip(`${name} (needs PORTCULLIS_TEST_DATABASE_URL)`, () => it("runs on PostgreSQL only", () => {}));
};
