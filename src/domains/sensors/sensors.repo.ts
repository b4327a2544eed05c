// SQL for the sensor registry, its keys, and the telemetry hot path: one INSERT per batch over
// unnest()ed column arrays (the database drops duplicates by event_key), the per-minute rollup and
// the sensor's last_event_at in the same transaction, and the reads the dashboard and detection use.
import { and, asc, desc, eq, gt, inArray, isNull, or, sql, type SQL } from "drizzle-orm";
import { rowsOf, type Executor } from "../../db/client.ts";
import { honeypotEventState as st, honeypotInstances as hi, honeypotKeys as hk } from "./sensors.tables.ts";

export type InstanceRow = typeof hi.$inferSelect;
export type KeyRow = typeof hk.$inferSelect;

/** One event as it is written: every column but id. */
export type EventInsert = {
  key: Buffer;
  sourceIp: string;
  eventType: string;
  detectedThreat: string | null;
  occurredAt: Date;
  payload: string;
  raw: string;
  secrets: Buffer | null;
  secretsKeyId: string | null;
};

export type EventRow = {
  id: string;
  sensor_id: string;
  sensor_name: string | null;
  source_ip: string;
  event_type: string;
  detected_threat: string | null;
  occurred_at: Date;
  received_at: Date;
  payload: Record<string, unknown>;
  raw: string;
  secrets: Buffer | null;
  secrets_key_id: string | null;
  processed_at: Date | null;
  processed_by: string | null;
};

export type EventFilter = {
  sensorId?: string | undefined;
  sourceIp?: string | undefined;
  eventType?: string | undefined;
  threat?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  unprocessedOnly?: boolean | undefined;
};

const toDate = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v).replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00")));
const toBuffer = (v: unknown): Buffer | null => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array));

const eventFromRow = (r: Record<string, unknown>): EventRow => ({
  id: String(r.id),
  sensor_id: String(r.sensor_id),
  sensor_name: (r.sensor_name as string | null) ?? null,
  source_ip: String(r.source_ip),
  event_type: String(r.event_type),
  detected_threat: (r.detected_threat as string | null) ?? null,
  occurred_at: toDate(r.occurred_at),
  received_at: toDate(r.received_at),
  payload: (typeof r.payload === "string" ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>,
  raw: String(r.raw),
  secrets: toBuffer(r.secrets),
  secrets_key_id: (r.secrets_key_id as string | null) ?? null,
  processed_at: r.processed_at === null || r.processed_at === undefined ? null : toDate(r.processed_at),
  processed_by: (r.processed_by as string | null) ?? null,
});

const EVENT_COLUMNS = sql`e.id, e.sensor_id, i.name AS sensor_name, e.source_ip, e.event_type, e.detected_threat, e.occurred_at, e.received_at, e.payload, e.raw, e.secrets, e.secrets_key_id, s.processed_at, s.processed_by`;

export const sensorsRepo = (db: Executor) => ({
  insertInstance: async (row: InstanceRow, ex: Executor = db): Promise<InstanceRow> => {
    const [inserted] = await ex.insert(hi).values(row).returning();
    return inserted!;
  },
  /** Inserts unless a sensor with that name (case-insensitive) exists; undefined then. */
  insertInstanceIfAbsent: async (row: InstanceRow, ex: Executor = db): Promise<InstanceRow | undefined> => {
    const [inserted] = await ex
      .insert(hi)
      .values(row)
      // The only unique constraints are the id (fresh) and lower(name).
      .onConflictDoNothing()
      .returning();
    return inserted;
  },
  getInstance: async (id: string, ex: Executor = db): Promise<InstanceRow | undefined> => {
    const [row] = await ex.select().from(hi).where(eq(hi.id, id)).limit(1);
    return row;
  },
  getInstanceByName: async (name: string, ex: Executor = db): Promise<InstanceRow | undefined> => {
    const [row] = await ex.select().from(hi).where(sql`lower(${hi.name}) = lower(${name})`).limit(1);
    return row;
  },
  listInstances: async (filter: { active?: boolean | undefined; type?: string | undefined }, limit: number, after: { t: string; id: string } | undefined, ex: Executor = db) => {
    const where: SQL[] = [];
    if (filter.active !== undefined) where.push(eq(hi.active, filter.active));
    if (filter.type) where.push(eq(hi.honeypotType, filter.type));
    if (after) where.push(sql`(${hi.createdAt}, ${hi.id}) < (${new Date(after.t)}, ${after.id}::uuid)`);
    return ex
      .select()
      .from(hi)
      .where(where.length ? and(...where) : undefined)
      .orderBy(desc(hi.createdAt), desc(hi.id))
      .limit(limit);
  },
  /** Conditional: only an active sensor is deactivated (one winner under concurrency). */
  deactivateInstance: async (id: string, at: Date, by: string, ex: Executor = db): Promise<InstanceRow | undefined> => {
    const [row] = await ex
      .update(hi)
      .set({ active: false, deactivatedAt: at, deactivatedBy: by, updatedAt: at })
      .where(and(eq(hi.id, id), eq(hi.active, true)))
      .returning();
    return row;
  },
  insertKey: async (row: KeyRow, ex: Executor = db): Promise<KeyRow> => {
    const [inserted] = await ex.insert(hk).values(row).returning();
    return inserted!;
  },
  keysOf: async (sensorId: string, ex: Executor = db): Promise<KeyRow[]> =>
    ex.select().from(hk).where(eq(hk.sensorId, sensorId)).orderBy(asc(hk.createdAt), asc(hk.id)),
  keysOfMany: async (sensorIds: string[], ex: Executor = db): Promise<Map<string, KeyRow[]>> => {
    const out = new Map<string, KeyRow[]>(sensorIds.map((id) => [id, []]));
    if (!sensorIds.length) return out;
    const rows = await ex.select().from(hk).where(inArray(hk.sensorId, sensorIds)).orderBy(asc(hk.createdAt), asc(hk.id));
    for (const k of rows) out.get(k.sensorId)?.push(k);
    return out;
  },
  /** Gives every usable key of the sensor an expiry no later than `at` (rotation's grace period). */
  expireKeys: async (sensorId: string, at: Date, ex: Executor = db): Promise<KeyRow[]> =>
    ex
      .update(hk)
      .set({ expiresAt: at })
      .where(and(eq(hk.sensorId, sensorId), isNull(hk.revokedAt), or(isNull(hk.expiresAt), gt(hk.expiresAt, at))))
      .returning(),
  /** Whether the sensor was ever given a key: a honeypot's sensor has one, an agent's (ensureSensor) none. */
  hasKey: async (sensorId: string, ex: Executor = db): Promise<boolean> => {
    const [row] = await ex.select({ id: hk.id }).from(hk).where(eq(hk.sensorId, sensorId)).limit(1);
    return row !== undefined;
  },
  /** The key with this hash and its sensor (for authentication). */
  findKey: async (hash: Buffer, ex: Executor = db): Promise<{ key: KeyRow; sensor: InstanceRow } | undefined> => {
    const [row] = await ex.select({ key: hk, sensor: hi }).from(hk).innerJoin(hi, eq(hi.id, hk.sensorId)).where(eq(hk.keyHash, hash)).limit(1);
    return row;
  },

  /**
   * One statement per batch: rows are sorted by key first, so two transactions inserting
   * overlapping batches take the unique index's locks in the same order and never deadlock.
   * Returns the ids of the rows that were new (a duplicate's key is absent).
   */
  /**
   * Also counts the new rows into the (bucket, sensor) rollup in the same statement: the rollup row
   * is locked only after every event row (the aggregate needs them all), so the lock order is
   * always event keys first, rollup last, and the hot rollup row is held only until commit.
   */
  insertEvents: async (sensorId: string, receivedAt: Date, bucket: Date, rows: EventInsert[], ex: Executor = db): Promise<Map<string, string>> => {
    const sorted = [...rows].sort((a, b) => Buffer.compare(a.key, b.key));
    // One JSON document for the whole batch, read by json_to_recordset (one pass per row, in C):
    // cheaper than nine PostgreSQL array literals or per-field ->> extraction. Payloads are
    // embedded as the JSON text the caller already serialised; hex, canonical IPs, event types,
    // ISO times and base64 need no escaping.
    const parts: string[] = new Array(sorted.length);
    for (let i = 0; i < sorted.length; i++) {
      const r = sorted[i]!;
      parts[i] = `{"k":"${r.key.toString("hex")}","i":"${r.sourceIp}","e":"${r.eventType}","h":${r.detectedThreat === null ? "null" : JSON.stringify(r.detectedThreat)},"o":"${r.occurredAt.toISOString()}","p":${r.payload},"r":${JSON.stringify(r.raw)},"s":${r.secrets ? `"${r.secrets.toString("base64")}"` : "null"},"z":${r.secretsKeyId === null ? "null" : JSON.stringify(r.secretsKeyId)}}`;
    }
    const result = await ex.execute(sql`
      WITH ins AS (
        INSERT INTO honeypot_events (event_key, sensor_id, source_ip, event_type, detected_threat, occurred_at, received_at, payload, raw, secrets, secrets_key_id)
        SELECT decode(k, 'hex'), ${sensorId}::uuid, i, e, h, o, ${receivedAt.toISOString()}::timestamptz, p, r, decode(s, 'base64'), z
        FROM ROWS FROM (json_to_recordset(${`[${parts.join(",")}]`}::json) AS (k text, i text, e text, h text, o timestamptz, p jsonb, r text, s text, z text))
          WITH ORDINALITY AS x(k, i, e, h, o, p, r, s, z, n)
        ORDER BY n
        ON CONFLICT (event_key) DO NOTHING
        RETURNING id, event_key, detected_threat
      ), rollup AS (
        INSERT INTO telemetry_rollups (bucket, sensor_id, events, threats)
        SELECT ${bucket.toISOString()}::timestamptz, ${sensorId}::uuid, count(*), count(detected_threat) FROM ins HAVING count(*) > 0
        ON CONFLICT (bucket, sensor_id) DO UPDATE SET events = telemetry_rollups.events + excluded.events, threats = telemetry_rollups.threats + excluded.threats
      )
      SELECT id::text AS id, encode(event_key, 'hex') AS k FROM ins`);
    const out = new Map<string, string>();
    for (const r of rowsOf<{ id: string; k: string }>(result)) out.set(r.k, r.id);
    return out;
  },
  /** Ids of stored events by key (the answer for duplicates). */
  idsByKeys: async (keys: Buffer[], ex: Executor = db): Promise<Map<string, string>> => {
    const out = new Map<string, string>();
    if (!keys.length) return out;
    const result = await ex.execute(sql`SELECT id, event_key FROM honeypot_events WHERE event_key = ANY(${sql.param(keys)}::bytea[])`);
    for (const r of rowsOf<{ id: unknown; event_key: unknown }>(result)) out.set(toBuffer(r.event_key)!.toString("hex"), String(r.id));
    return out;
  },
  touchLastEvent: async (sensorId: string, at: Date, ex: Executor = db): Promise<void> => {
    await ex.execute(sql`UPDATE honeypot_instances SET last_event_at = ${at.toISOString()}::timestamptz WHERE id = ${sensorId}::uuid AND (last_event_at IS NULL OR last_event_at < ${at.toISOString()}::timestamptz)`);
  },

  listEvents: async (filter: EventFilter, limit: number, beforeId: string | undefined, ex: Executor = db): Promise<EventRow[]> => {
    const where: SQL[] = [sql`TRUE`];
    if (filter.sensorId) where.push(sql`e.sensor_id = ${filter.sensorId}::uuid`);
    if (filter.sourceIp) where.push(sql`e.source_ip = ${filter.sourceIp}`);
    if (filter.eventType) where.push(sql`e.event_type = ${filter.eventType}`);
    if (filter.threat) where.push(sql`e.detected_threat = ${filter.threat}`);
    if (filter.since) where.push(sql`e.occurred_at >= ${filter.since.toISOString()}::timestamptz`);
    if (filter.until) where.push(sql`e.occurred_at < ${filter.until.toISOString()}::timestamptz`);
    if (filter.unprocessedOnly) where.push(sql`s.event_id IS NULL`);
    if (beforeId) where.push(sql`e.id < ${beforeId}::bigint`);
    const result = await ex.execute(sql`
      SELECT ${EVENT_COLUMNS}
      FROM honeypot_events e
      LEFT JOIN honeypot_event_state s ON s.event_id = e.id
      LEFT JOIN honeypot_instances i ON i.id = e.sensor_id
      WHERE ${sql.join(where, sql` AND `)}
      ORDER BY e.id DESC
      LIMIT ${limit}`);
    return rowsOf<Record<string, unknown>>(result).map(eventFromRow);
  },
  getEvent: async (id: string, ex: Executor = db): Promise<EventRow | undefined> => {
    const result = await ex.execute(sql`
      SELECT ${EVENT_COLUMNS}
      FROM honeypot_events e
      LEFT JOIN honeypot_event_state s ON s.event_id = e.id
      LEFT JOIN honeypot_instances i ON i.id = e.sensor_id
      WHERE e.id = ${id}::bigint`);
    const [row] = rowsOf<Record<string, unknown>>(result);
    return row ? eventFromRow(row) : undefined;
  },
  /** Inserts the triage state unless it exists; the row as stored and whether this call wrote it. */
  markProcessed: async (eventId: string, at: Date, by: string, ex: Executor = db) => {
    const [inserted] = await ex
      .insert(st)
      .values({ eventId: BigInt(eventId), processedAt: at, processedBy: by })
      .onConflictDoNothing()
      .returning();
    if (inserted) return { row: inserted, created: true };
    const [existing] = await ex.select().from(st).where(eq(st.eventId, BigInt(eventId))).limit(1);
    return { row: existing!, created: false };
  },

  /**
   * Counts for one source address over the last hour and day (received time), by its index: only
   * events of honeypot sensors, i.e. sensors that hold a key. An agent's sensor (ensureSensor: a
   * CrowdSec watcher's alerts) never has one, and its reports are claims, not honeypot evidence.
   * The key test is one probe of honeypot_keys_sensor per distinct sensor (a small table).
   */
  sourceActivity: async (ip: string, hourAgo: Date, dayAgo: Date, ex: Executor = db) => {
    const result = await ex.execute(sql`
      SELECT
        count(*) FILTER (WHERE e.received_at >= ${hourAgo.toISOString()}::timestamptz) AS events_1h,
        count(*) FILTER (WHERE e.received_at >= ${hourAgo.toISOString()}::timestamptz AND e.event_type = 'exploitation') AS exploitation_1h,
        count(*) AS hits_24h,
        coalesce(array_agg(DISTINCT i.name), '{}') AS sensors
      FROM honeypot_events e
      JOIN honeypot_instances i ON i.id = e.sensor_id
      WHERE e.source_ip = ${ip} AND e.received_at >= ${dayAgo.toISOString()}::timestamptz
        AND EXISTS (SELECT 1 FROM honeypot_keys k WHERE k.sensor_id = e.sensor_id)`);
    const [r] = rowsOf<{ events_1h: unknown; exploitation_1h: unknown; hits_24h: unknown; sensors: unknown }>(result);
    const sensors = Array.isArray(r?.sensors) ? (r.sensors as string[]) : typeof r?.sensors === "string" ? parsePgTextArray(r.sensors) : [];
    return { events_1h: Number(r?.events_1h ?? 0), exploitation_1h: Number(r?.exploitation_1h ?? 0), hits_24h: Number(r?.hits_24h ?? 0), sensors: sensors.sort() };
  },
  summary: async (since: Date, ex: Executor = db) => {
    const result = await ex.execute(sql`
      SELECT
        (SELECT count(*) FROM honeypot_instances) AS total_instances,
        (SELECT count(*) FROM honeypot_instances WHERE active) AS active_instances,
        (SELECT coalesce(sum(events), 0) FROM telemetry_rollups WHERE bucket >= ${since.toISOString()}::timestamptz) AS recent_events,
        (SELECT coalesce(sum(threats), 0) FROM telemetry_rollups WHERE bucket >= ${since.toISOString()}::timestamptz) AS threats_detected`);
    const [r] = rowsOf<Record<string, unknown>>(result);
    return {
      total_instances: Number(r?.total_instances ?? 0),
      active_instances: Number(r?.active_instances ?? 0),
      recent_events: Number(r?.recent_events ?? 0),
      threats_detected: Number(r?.threats_detected ?? 0),
    };
  },
  /**
   * Events received at or after `since`, oldest first, after `afterId`. The first id of the window
   * is found by walking the primary key backwards from the newest row (ids grow with receipt), so
   * the cost is the window's size, not the table's.
   */
  eventsSince: async (since: Date, afterId: string | null, limit: number, ex: Executor = db): Promise<EventRow[]> => {
    const boundary = await ex.execute(sql`SELECT id FROM honeypot_events WHERE received_at < ${since.toISOString()}::timestamptz ORDER BY id DESC LIMIT 1`);
    const [b] = rowsOf<{ id: unknown }>(boundary);
    const floor = [b ? BigInt(String(b.id)) : 0n, afterId ? BigInt(afterId) : 0n].reduce((x, y) => (x > y ? x : y));
    const result = await ex.execute(sql`
      SELECT ${EVENT_COLUMNS}
      FROM honeypot_events e
      LEFT JOIN honeypot_event_state s ON s.event_id = e.id
      LEFT JOIN honeypot_instances i ON i.id = e.sensor_id
      WHERE e.id > ${floor.toString()}::bigint AND e.received_at >= ${since.toISOString()}::timestamptz
      ORDER BY e.id ASC
      LIMIT ${limit}`);
    return rowsOf<Record<string, unknown>>(result).map(eventFromRow);
  },
});
export type SensorsRepo = ReturnType<typeof sensorsRepo>;

/** A PostgreSQL text[] literal such as {a,"b c"} (node-postgres leaves unknown array types as text). */
const parsePgTextArray = (text: string): string[] => {
  if (text === "{}") return [];
  const out: string[] = [];
  const body = text.slice(1, -1);
  let i = 0;
  while (i < body.length) {
    if (body[i] === '"') {
      let value = "";
      i++;
      while (i < body.length && body[i] !== '"') {
        if (body[i] === "\\") i++;
        value += body[i];
        i++;
      }
      out.push(value);
      i += 2;
    } else {
      const end = body.indexOf(",", i);
      out.push(body.slice(i, end < 0 ? body.length : end));
      i = end < 0 ? body.length : end + 1;
    }
  }
  return out;
};
