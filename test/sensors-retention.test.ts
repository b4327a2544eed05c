// Telemetry retention on both databases: events received before the cutoff are removed in batches
// of consecutive ids, each after a signed summary (count, first/last id, digest of event keys) in
// the audit log; their triage state and old rollups go too; nothing newer is touched; and outside
// the retention job the events table refuses DELETE, UPDATE and TRUNCATE.
import { createHash, createPrivateKey, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { createTestApp, DB_KINDS, TEST_SIGNING_KEY, type TestApp } from "./helpers/harness.ts";
import { isAppendOnlyViolation } from "../src/db/errors.ts";
import { parseVerifierKey } from "../src/lib/signed-note.ts";
import { manualClock } from "../src/lib/time.ts";
import { RETENTION_ACTION, ROLLUP_RETENTION_ACTION, sensorsRetention, verifyRetentionSummary, type SignedRetentionSummary } from "../src/domains/sensors/retention.ts";

const DAY = 86_400_000;
const NOW = new Date("2026-06-01T00:00:00Z");
const SENSOR = "0190a0b0-0000-7000-8000-00000000abcd";

type Inserted = { id: string; key: Buffer };

describe.each(DB_KINDS)("telemetry retention on %s", (kind) => {
  let t: TestApp;
  const clock = manualClock(NOW);

  const insertEvent = async (receivedAt: Date): Promise<Inserted> => {
    const key = randomBytes(16);
    const [row] = await t.db.query<{ id: string }>(
      `INSERT INTO honeypot_events (event_key, sensor_id, source_ip, event_type, detected_threat, occurred_at, received_at, payload, raw)
       VALUES (decode($1, 'hex'), $2, '203.0.113.9', 'auth_attempt', NULL, $3, $3, '{"username":"root"}', '{"eventid":"cowrie.login.failed"}')
       RETURNING id::text AS id`,
      [key.toString("hex"), SENSOR, receivedAt.toISOString()],
    );
    return { id: row!.id, key };
  };
  const markProcessed = (id: string) => t.db.query(`INSERT INTO honeypot_event_state (event_id, processed_at, processed_by) VALUES ($1, $2, 'analyst')`, [id, NOW.toISOString()]);
  const remainingIds = async () => (await t.db.query<{ id: string }>("SELECT id::text AS id FROM honeypot_events ORDER BY honeypot_events.id")).map((r) => r.id);
  const auditEntries = async (action: string) => {
    const res = await t.app.inject({ method: "GET", url: `/audit/entries?action=${action}&limit=1000`, headers: t.auth() });
    expect(res.statusCode).toBe(200);
    return (res.json() as { items: { action: string; details: unknown; actor: { id: string } }[] }).items;
  };
  const digestOf = (events: Inserted[]) => `sha256:${createHash("sha256").update(Buffer.concat(events.map((e) => e.key))).digest("hex")}`;

  beforeAll(async () => {
    t = await createTestApp(kind, { clock, config: { "sensors.retentionDays": 30 } });
  });
  afterAll(async () => t?.close());

  describe("the append-only guard", () => {
    it.each(["DELETE FROM honeypot_events", "UPDATE honeypot_events SET detected_threat = 'x'", "TRUNCATE honeypot_events"])("refuses %s outside the retention job", async (statement) => {
      const e = await insertEvent(new Date(NOW.getTime() - 40 * DAY));
      const error = await t.db.orm.execute(sql.raw(statement)).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isAppendOnlyViolation(error)).toBe(true);
      expect(await remainingIds()).toContain(e.id);
    });

    it("does not let the retention switch outlive its transaction", async () => {
      await t.db.transaction(async (tx) => {
        await tx.execute(sql`SELECT set_config('portcullis.retention', 'on', true)`);
      });
      const error = await t.db.orm.execute(sql`DELETE FROM honeypot_events`).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isAppendOnlyViolation(error)).toBe(true);
    });
  });

  describe("runs", () => {
    let old: Inserted[];
    let recent: Inserted[];
    let oldAfterRecent: Inserted;

    beforeAll(async () => {
      // Leftovers from the guard tests are old too: start from a clean slate through the job itself.
      await t.app.services.sensorsRetention.run(NOW);
      old = [];
      for (let i = 0; i < 17; i++) old.push(await insertEvent(new Date(NOW.getTime() - (60 - i) * DAY)));
      recent = [await insertEvent(new Date(NOW.getTime() - 29 * DAY)), await insertEvent(new Date(NOW.getTime() - DAY))];
      // Received "before" a newer one in id order (a clock step back): it waits for the ids before it.
      oldAfterRecent = await insertEvent(new Date(NOW.getTime() - 50 * DAY));
      for (const e of [old[0]!, old[16]!, recent[0]!]) await markProcessed(e.id);
      await t.db.query(
        `INSERT INTO telemetry_rollups (bucket, sensor_id, events, threats) VALUES ($1, $3, 5, 1), ($2, $3, 7, 0)`,
        [new Date(NOW.getTime() - 31 * DAY).toISOString(), new Date(NOW.getTime() - 29 * DAY).toISOString(), SENSOR],
      );
    });

    it("removes due events in signed batches of consecutive ids, oldest first", async () => {
      const before = (await auditEntries(RETENTION_ACTION)).length;
      const job = sensorsRetention({
        db: t.db,
        audit: t.app.services.audit,
        clock,
        signing: { privateKey: createPrivateKey(TEST_SIGNING_KEY), keyIdHex: "will-check-below" },
        settings: { retentionDays: 30, batchSize: 7 },
      });
      const result = await job.run(NOW);
      expect(result).toMatchObject({ batches: 3, events: 17, rollups: 1 });
      expect(result.cutoff.toISOString()).toBe(new Date(NOW.getTime() - 30 * DAY).toISOString());
      expect(await remainingIds()).toEqual([recent[0]!.id, recent[1]!.id, oldAfterRecent.id]);

      const entries = (await auditEntries(RETENTION_ACTION)).slice(-3);
      expect((await auditEntries(RETENTION_ACTION)).length).toBe(before + 3);
      const batches = [old.slice(0, 7), old.slice(7, 14), old.slice(14)];
      const verifier = parseVerifierKey((await t.app.inject({ method: "GET", url: "/audit/public-key", headers: t.auth() })).body.trim());
      entries.forEach((entry, i) => {
        const signed = entry.details as SignedRetentionSummary;
        expect(entry.actor.id).toBe("retention");
        expect(signed.summary).toEqual({
          kind: "portcullis.sensors.retention.v1",
          cutoff: result.cutoff.toISOString(),
          retention_days: 30,
          count: batches[i]!.length,
          first_id: batches[i]![0]!.id,
          last_id: batches[i]!.at(-1)!.id,
          digest: digestOf(batches[i]!),
          removed_at: NOW.toISOString(),
        });
        expect(verifyRetentionSummary(verifier.publicKey, signed)).toBe(true);
        expect(verifyRetentionSummary(verifier.publicKey, { ...signed, summary: { ...signed.summary, count: signed.summary.count + 1 } })).toBe(false);
      });
    });

    it("removes the removed events' triage state and old rollups, keeps the rest", async () => {
      const states = (await t.db.query<{ id: string }>("SELECT event_id::text AS id FROM honeypot_event_state ORDER BY honeypot_event_state.event_id")).map((r) => r.id);
      expect(states).toEqual([recent[0]!.id]);
      const rollups = await t.db.query<{ events: string | number }>("SELECT events FROM telemetry_rollups");
      expect(rollups.map((r) => Number(r.events))).toEqual([7]);
      const entry = (await auditEntries(ROLLUP_RETENTION_ACTION)).at(-1);
      expect(entry?.details).toMatchObject({ count: 1, retention_days: 30 });
    });

    it("signs with the audit key through services.sensorsRetention, and does nothing when nothing is due", async () => {
      const before = (await auditEntries(RETENTION_ACTION)).length;
      expect(await t.app.services.sensorsRetention.run(NOW)).toMatchObject({ batches: 0, events: 0, rollups: 0 });
      expect((await auditEntries(RETENTION_ACTION)).length).toBe(before);
      // 21 days on, the first recent one is due; the next is not, so the out-of-order old one behind it waits.
      clock.set(new Date(NOW.getTime() + 21 * DAY));
      expect(await t.app.services.sensorsRetention.run()).toMatchObject({ batches: 1, events: 1 });
      expect(await remainingIds()).toEqual([recent[1]!.id, oldAfterRecent.id]);
      // 31 days on, both remaining ones are due.
      clock.set(new Date(NOW.getTime() + 31 * DAY));
      expect(await t.app.services.sensorsRetention.run()).toMatchObject({ batches: 1, events: 2 });
      expect(await remainingIds()).toEqual([]);
      const entry = (await auditEntries(RETENTION_ACTION)).at(-1);
      const signed = entry!.details as SignedRetentionSummary;
      const verifier = parseVerifierKey((await t.app.inject({ method: "GET", url: "/audit/public-key", headers: t.auth() })).body.trim());
      expect(signed.key_id).toBe(verifier.keyId.toString("hex"));
      expect(verifyRetentionSummary(verifier.publicKey, signed)).toBe(true);
      expect(signed.summary).toMatchObject({ count: 2, first_id: recent[1]!.id, last_id: oldAfterRecent.id, digest: digestOf([recent[1]!, oldAfterRecent]) });
    });
  });
});
