// The per-process cache of the tree's right edge must never outlive the truth: a transaction that
// swallowed a database error resolves normally but PostgreSQL rolls it back at COMMIT, and another
// node may then append the same number of entries. The tree must still match its leaves.
import { describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { describePostgres, openTestDatabase } from "./helpers/harness.ts";
import { openDatabase } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { auditRepo } from "../src/domains/audit/audit.repo.ts";
import { auditService } from "../src/domains/audit/audit.service.ts";
import { systemActor } from "../src/domains/identity/principal.ts";
import { systemClock } from "../src/lib/time.ts";
import { rootAt, rootFromLeafHashes } from "../src/lib/merkle.ts";

describePostgres("audit frontier cache on postgres", () => {
  it("is not fooled by a silently rolled-back commit followed by another node's append", async () => {
    const db = await openTestDatabase("postgres");
    const other = await openDatabase({ databaseUrl: db.url!, poolSize: 2 });
    try {
      await migrate(db);
      const actor = systemActor("test");
      const a = auditService({ repo: auditRepo(db.orm), clock: systemClock });
      const b = auditService({ repo: auditRepo(other.orm), clock: systemClock });
      await db.transaction((tx) => a.append(tx, actor, { action: "a0" }));
      await db.transaction(async (tx) => {
        await a.append(tx, actor, { action: "lost" });
        await tx.execute(sql`SELECT 1/0`).catch(() => undefined);
      });
      await other.transaction((tx) => b.append(tx, actor, { action: "b1" }));
      await db.transaction((tx) => a.append(tx, actor, { action: "a2" }));
      await db.transaction((tx) => a.append(tx, actor, { action: "a3" }));
      const rows = await db.query<{ leaf_hash: Uint8Array; action: string }>("SELECT leaf_hash, action FROM audit_log ORDER BY seq");
      expect(rows.map((r) => r.action)).toEqual(["a0", "b1", "a2", "a3"]);
      const root = await rootAt(rows.length, auditRepo(db.orm).nodeReader());
      expect(root.equals(rootFromLeafHashes(rows.map((r) => Buffer.from(r.leaf_hash))))).toBe(true);
    } finally {
      await other.close();
      await db.close();
    }
  });
});
