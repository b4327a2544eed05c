// The audit table is append-only at the database level: UPDATE, DELETE and TRUNCATE fail by trigger
// on PGlite and PostgreSQL alike, and a change whose audit append fails is not applied.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { isAppendOnlyViolation } from "../src/db/errors.ts";
import { systemActor } from "../src/domains/identity/principal.ts";

describe.each(DB_KINDS)("audit log on %s", (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(kind);
  });
  afterAll(async () => t?.close());

  it("has entries from the bootstrap", async () => {
    const res = await t.app.inject({ method: "GET", url: "/audit/entries", headers: t.auth() });
    expect(res.json().items.map((e: { action: string }) => e.action)).toEqual(["identity.user.created", "identity.api_key.created"]);
    expect(JSON.stringify(res.json())).not.toContain(t.adminToken);
  });

  for (const statement of [
    "UPDATE audit_log SET action = 'x'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "UPDATE audit_tree SET hash = hash",
    "DELETE FROM audit_tree",
    "TRUNCATE audit_tree",
    "UPDATE audit_checkpoints SET note = note",
    "DELETE FROM audit_checkpoints",
    "TRUNCATE audit_checkpoints",
  ]) {
    it(`rejects ${statement}`, async () => {
      if (statement.includes("checkpoints")) await t.app.services.transparency.issueCheckpoint();
      const error = await t.db.orm.execute(sql.raw(statement)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isAppendOnlyViolation(error)).toBe(true);
      const count = await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_log");
      expect(count[0]!.n).toBeGreaterThanOrEqual(2);
    });
  }

  it("rolls back the change when the audit append fails", async () => {
    const before = await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM blocked_entities");
    const error = await t.db
      .transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO blocked_entities (id, entity_type, value, reason, created_by, created_at, active, forced) VALUES (gen_random_uuid(), 'user', 'rollback-probe', '', 'test', now(), true, false)`);
        await t.app.services.audit.append(tx, systemActor("test"), { action: "x", details: { bad: 1n as unknown as number } });
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    const after = await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM blocked_entities");
    expect(after[0]!.n).toBe(before[0]!.n);
  });
});
