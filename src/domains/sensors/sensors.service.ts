// Honeypot sensors: the registry (keys shown once, stored as SHA-256, rotation with a grace period,
// deactivation), sensor-key authentication, and ingestion of native, Cowrie (Splunk HEC) and
// OpenCanary events into the append-only events table, acknowledged only after commit. Also the
// reads other domains use: triage, listing with credentials masked, per-source activity and the
// dashboard summary from rollups.
import { createHash, randomBytes } from "node:crypto";
import { afterCommit, type Database, type Tx } from "../../db/client.ts";
import { pgErrorCode } from "../../db/errors.ts";
import { AppError, COMMON_ERRORS, defineErrors, validationError } from "../../lib/errors.ts";
import { normalizeIp } from "../../lib/ip.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { decodeCursor, toPage, type Page } from "../../lib/pagination.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { actorName, hasPermission, machinePrincipal, requirePermission, type Actor, type SystemPrincipal } from "../identity/principal.ts";
import {
  EVENT_TYPES,
  eventKey,
  fromCowrie,
  fromNative,
  fromOpenCanary,
  splitBatch,
  splitConcatenated,
  type AdapterResult,
  type EventType,
  type NormalizedEvent,
} from "./adapters/index.ts";
import type { CredentialVault } from "./credentials.ts";
import type { EventInsert, EventRow, InstanceRow, KeyRow, SensorsRepo } from "./sensors.repo.ts";
import type { CreateInstanceInput, EventItem, Instance, ItemResult, ListEventsQuery, ListInstancesQuery } from "./sensors.schemas.ts";

export const SENSOR_ERRORS = defineErrors({
  SENSOR_NOT_FOUND: { status: 404, title: "Sensor not found" },
  SENSOR_NAME_TAKEN: { status: 409, title: "A sensor with this name exists" },
  SENSOR_NOT_ACTIVE: { status: 409, title: "Sensor is deactivated" },
  SENSOR_KEY_INVALID: { status: 401, title: "Unknown sensor key" },
  SENSOR_KEY_EXPIRED: { status: 401, title: "Sensor key expired" },
  SENSOR_KEY_REVOKED: { status: 401, title: "Sensor key revoked" },
  SENSOR_DEACTIVATED: { status: 403, title: "Sensor is deactivated" },
  SENSOR_IS_AGENT: { status: 409, title: "The sensor belongs to an agent" },
  EVENT_NOT_FOUND: { status: 404, title: "Event not found" },
  BATCH_TOO_LARGE: { status: 413, title: "Batch too large" },
  EMPTY_BATCH: { status: 400, title: "The batch holds no events" },
});

export type SensorSettings = {
  keyRotationGraceSeconds: number;
  batchMaxEvents: number;
  batchMaxBytes: number;
  eventMaxBytes: number;
  fieldMaxChars: number;
};

/** Tells every node to forget cached sensor keys (a deactivation); published inside the writing transaction. */
export type SensorChangeFeed = { publish(tx: Tx): Promise<void> };

export type IngestedEvent = {
  id: string;
  sensorId: string;
  sensorName: string;
  sourceIp: string;
  eventType: EventType;
  detectedThreat: string | null;
  occurredAt: Date;
  receivedAt: Date;
  payload: Record<string, unknown>;
};

type Deps = {
  db: Database;
  repo: SensorsRepo;
  audit: Pick<AuditService, "append">;
  clock: Clock;
  vault: CredentialVault;
  settings: SensorSettings;
  changeFeed: SensorChangeFeed;
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
};

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KEY_PREFIX = "phk_";
const KEY_RE = /^phk_[A-Za-z0-9_-]{43}$/;
// Up to 18 digits: always inside bigint.
const EVENT_ID_RE = /^[1-9][0-9]{0,17}$/;
const CANONICAL_IP = /^[0-9a-f.:]{2,45}$/;
const ROLLUP_SHARDS = 8;
const EVENT_TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);
// A cached key answer is reused this long; deactivation clears this node's cache at once and
// other nodes' through NOTIFY (PostgreSQL), so the TTL only bounds what a lost notification costs.
const AUTH_CACHE_MS = 5_000;
const AUTH_CACHE_MAX = 10_000;

/** A new sensor key: 32 random bytes, base64url, with a visible prefix. */
export const generateSensorKey = (): string => `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
export const sensorKeyPrefix = (key: string): string => key.slice(0, KEY_PREFIX.length + 8);
const hashKey = (key: string): Buffer => createHash("sha256").update(key, "utf8").digest();

const keyStatus = (k: KeyRow, now: Date): "active" | "expiring" | "expired" | "revoked" =>
  k.revokedAt ? "revoked" : k.expiresAt && k.expiresAt.getTime() <= now.getTime() ? "expired" : k.expiresAt ? "expiring" : "active";

export const toInstance = (row: InstanceRow, keys: KeyRow[], now: Date): Instance => ({
  id: row.id,
  name: row.name,
  honeypot_type: row.honeypotType,
  location: row.location,
  metadata: row.metadata,
  active: row.active,
  created_at: row.createdAt.toISOString(),
  created_by: row.createdBy,
  updated_at: row.updatedAt.toISOString(),
  deactivated_at: row.deactivatedAt?.toISOString() ?? null,
  deactivated_by: row.deactivatedBy,
  last_event_at: row.lastEventAt?.toISOString() ?? null,
  keys: keys.map((k) => ({
    prefix: k.prefix,
    created_at: k.createdAt.toISOString(),
    expires_at: k.expiresAt?.toISOString() ?? null,
    revoked_at: k.revokedAt?.toISOString() ?? null,
    status: keyStatus(k, now),
  })),
});

/** Path of the first string PostgreSQL cannot store unchanged (NUL, lone surrogate) or longer than `max`. */
const badString = (value: unknown, path: string, max: number, depth = 0): { path: string; message: string } | undefined => {
  if (typeof value === "string") {
    if (value.includes("\u0000") || !value.isWellFormed()) return { path, message: "contains a NUL character or an unpaired UTF-16 surrogate" };
    if (value.length > max) return { path, message: `longer than ${max} characters` };
    return undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  if (depth > 32) return { path, message: "nested deeper than 32 levels" };
  for (const [key, inner] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key;
    if (key.includes("\u0000") || !key.isWellFormed()) return { path: at, message: "the field name contains a NUL character or an unpaired UTF-16 surrogate" };
    const found = badString(inner, at, max, depth + 1);
    if (found) return found;
  }
  return undefined;
};

type Prepared = { index: number; event: NormalizedEvent; row: EventInsert; keyHex: string };

export const sensorsService = ({ db, repo, audit, clock, vault, settings, changeFeed, log }: Deps) => {
  const listeners: ((events: IngestedEvent[]) => void)[] = [];
  const lastTouched = new Map<string, number>();
  let rollupShard = 0;

  // ---- keys and authentication -------------------------------------------------------------
  type CachedKey = { at: number; key: KeyRow; sensor: InstanceRow } | { at: number; missing: true };
  const authCache = new Map<string, CachedKey>();
  // Bumped by every clear: a lookup that read the key row before a deactivation or rotation
  // committed, and finishes after the clear, must not put its stale answer back for a whole TTL.
  let cacheGeneration = 0;
  const invalidateCache = () => {
    cacheGeneration++;
    authCache.clear();
  };

  /** The principal of a sensor key, or a 401/403 AppError that says why it is refused. */
  const authenticateKey = async (key: string): Promise<SystemPrincipal> => {
    if (!KEY_RE.test(key)) throw SENSOR_ERRORS.SENSOR_KEY_INVALID("this is not a sensor key (phk_...)");
    const hash = hashKey(key);
    const cacheKey = hash.toString("hex");
    const nowMs = Date.now();
    let entry = authCache.get(cacheKey);
    if (!entry || nowMs - entry.at > AUTH_CACHE_MS) {
      const generation = cacheGeneration;
      const found = await repo.findKey(hash);
      entry = found ? { at: nowMs, key: found.key, sensor: found.sensor } : { at: nowMs, missing: true };
      // A clear since the read: the answer may predate the change, so it serves this request only.
      if (generation === cacheGeneration) {
        if (authCache.size >= AUTH_CACHE_MAX) authCache.clear();
        authCache.set(cacheKey, entry);
      }
    }
    if ("missing" in entry) throw SENSOR_ERRORS.SENSOR_KEY_INVALID("unknown sensor key");
    const now = clock.now();
    const { key: k, sensor } = entry;
    if (k.revokedAt) throw SENSOR_ERRORS.SENSOR_KEY_REVOKED(`sensor key ${k.prefix} was revoked at ${k.revokedAt.toISOString()}`);
    if (k.expiresAt && k.expiresAt.getTime() <= now.getTime())
      throw SENSOR_ERRORS.SENSOR_KEY_EXPIRED(`sensor key ${k.prefix} expired at ${k.expiresAt.toISOString()} (it was rotated); use the sensor's current key`);
    if (!sensor.active)
      throw SENSOR_ERRORS.SENSOR_DEACTIVATED(`sensor ${sensor.name} was deactivated at ${sensor.deactivatedAt?.toISOString() ?? "an earlier time"}; its keys are no longer accepted`, {
        sensor_id: sensor.id,
      });
    return machinePrincipal("sensor", sensor.id, sensor.name, ["events:ingest"]);
  };

  // ---- registry ----------------------------------------------------------------------------
  const newKeyRow = (sensorId: string, key: string, actor: Actor, now: Date): KeyRow => ({
    id: uuidv7(),
    sensorId,
    prefix: sensorKeyPrefix(key),
    keyHash: hashKey(key),
    createdAt: now,
    createdBy: actorName(actor),
    expiresAt: null,
    revokedAt: null,
  });

  const loadInstance = async (id: string, tx?: Tx): Promise<InstanceRow> => {
    const row = UUID_RE.test(id) ? await repo.getInstance(id, tx) : undefined;
    if (!row) throw SENSOR_ERRORS.SENSOR_NOT_FOUND(`no sensor with id ${id}`);
    return row;
  };

  const newInstanceRow = (input: { name: string; honeypot_type: string; location?: string | undefined; metadata?: Record<string, unknown> | undefined }, actor: Actor, now: Date): InstanceRow => ({
    id: uuidv7(),
    name: input.name,
    honeypotType: input.honeypot_type,
    location: input.location ?? "",
    metadata: input.metadata ?? {},
    active: true,
    createdAt: now,
    createdBy: actorName(actor),
    updatedAt: now,
    deactivatedAt: null,
    deactivatedBy: null,
    lastEventAt: null,
  });

  const createInstance = async (actor: Actor, input: CreateInstanceInput): Promise<Instance & { api_key: string }> => {
    requirePermission(actor, "sensors:manage");
    const now = clock.now();
    const key = generateSensorKey();
    const row = newInstanceRow(input, actor, now);
    const { inserted, keyRow } = await db
      .transaction(async (tx) => {
        const inserted = await repo.insertInstanceIfAbsent(row, tx);
        if (!inserted) return { inserted: undefined, keyRow: undefined };
        const keyRow = await repo.insertKey(newKeyRow(inserted.id, key, actor, now), tx);
        await audit.append(tx, actor, {
          action: "sensors.instance.created",
          target: { type: "sensor", id: inserted.id },
          after: toInstance(inserted, [keyRow], now),
        });
        return { inserted, keyRow };
      });
    if (!inserted || !keyRow) {
      const existing = await repo.getInstanceByName(input.name);
      throw SENSOR_ERRORS.SENSOR_NAME_TAKEN(`a sensor named ${input.name} exists (${existing?.id ?? "just created"})`, {
        existing_sensor_id: existing?.id ?? null,
        errors: [{ path: "name", message: "already taken" }],
      });
    }
    return { ...toInstance(inserted, [keyRow], now), api_key: key };
  };

  /**
   * An agent's sensor (a CrowdSec watcher's alerts), idempotent by name (case-insensitive). No key
   * is issued, ever (rotateKey refuses it): having no key is what marks an agent's sensor, whose
   * events are claims, not honeypot evidence, so sourceActivity leaves them out.
   */
  const ensureSensor = async (actor: Actor, input: { name: string; honeypot_type: string; location?: string; metadata?: Record<string, unknown> }): Promise<{ id: string; name: string }> => {
    requirePermission(actor, "sensors:manage");
    const existing = await repo.getInstanceByName(input.name);
    if (existing) return { id: existing.id, name: existing.name };
    const now = clock.now();
    const row = newInstanceRow(input, actor, now);
    const inserted = await db.transaction(async (tx) => {
      const created = await repo.insertInstanceIfAbsent(row, tx);
      if (created)
        await audit.append(tx, actor, {
          action: "sensors.instance.created",
          target: { type: "sensor", id: created.id },
          after: toInstance(created, [], now),
          details: { via: "ensure", keyless: true },
        });
      return created;
    });
    if (inserted) return { id: inserted.id, name: inserted.name };
    const winner = (await repo.getInstanceByName(input.name))!;
    return { id: winner.id, name: winner.name };
  };

  const showInstance = async (actor: Actor, id: string): Promise<Instance> => {
    requirePermission(actor, "events:read");
    const row = await loadInstance(id);
    return toInstance(row, await repo.keysOf(row.id), clock.now());
  };

  const listInstances = async (actor: Actor, query: ListInstancesQuery): Promise<Page<Instance>> => {
    requirePermission(actor, "events:read");
    const now = clock.now();
    const rows = await repo.listInstances({ active: query.active, type: query.honeypot_type }, query.limit + 1, decodeCursor(query.cursor));
    const page = toPage(rows, query.limit, (r) => ({ t: r.createdAt.toISOString(), id: r.id }), (r) => r);
    const keys = await repo.keysOfMany(page.items.map((r) => r.id));
    const items = page.items.map((r) => toInstance(r, keys.get(r.id) ?? [], now));
    return { items, next_cursor: page.next_cursor };
  };

  /** `outer`: inside the caller's transaction (the action workflow); caches follow after its commit. */
  const deactivate = async (actor: Actor, id: string, reason: string, outer?: Tx): Promise<Instance> => {
    requirePermission(actor, "sensors:manage");
    const now = clock.now();
    const existing = await loadInstance(id, outer);
    const write = async (tx: Tx) => {
      const updated = await repo.deactivateInstance(existing.id, now, actorName(actor), tx);
      if (!updated) return undefined;
      const keys = await repo.keysOf(existing.id, tx);
      await audit.append(tx, actor, {
        action: "sensors.instance.deactivated",
        target: { type: "sensor", id: existing.id },
        before: toInstance(existing, keys, now),
        after: toInstance(updated, keys, now),
        details: reason ? { reason } : undefined,
      });
      await changeFeed.publish(tx);
      afterCommit(tx, invalidateCache);
      return toInstance(updated, keys, now);
    };
    const result = outer ? await write(outer) : await db.transaction(write);
    if (!result)
      throw SENSOR_ERRORS.SENSOR_NOT_ACTIVE(`sensor ${existing.name} is already deactivated (since ${existing.deactivatedAt?.toISOString() ?? "earlier"})`);
    return result;
  };

  /** A new key; the sensor's earlier keys keep working for the grace period, then expire. */
  const rotateKey = async (actor: Actor, id: string, graceSeconds?: number): Promise<Instance & { api_key: string }> => {
    requirePermission(actor, "sensors:manage");
    const now = clock.now();
    const existing = await loadInstance(id);
    if (!existing.active) throw SENSOR_ERRORS.SENSOR_NOT_ACTIVE(`sensor ${existing.name} is deactivated: a deactivated sensor gets no new key`);
    // A key would turn an agent's reports into honeypot evidence (see ensureSensor).
    if (!(await repo.hasKey(existing.id)))
      throw SENSOR_ERRORS.SENSOR_IS_AGENT(`sensor ${existing.name} was registered by an agent (it has no key): it gets none; register a honeypot sensor instead`);
    const grace = graceSeconds ?? settings.keyRotationGraceSeconds;
    const oldUntil = new Date(now.getTime() + grace * 1000);
    const key = generateSensorKey();
    const keys = await db.transaction(async (tx) => {
      const before = await repo.keysOf(existing.id, tx);
      const expiring = await repo.expireKeys(existing.id, oldUntil, tx);
      const keyRow = await repo.insertKey(newKeyRow(existing.id, key, actor, now), tx);
      const after = await repo.keysOf(existing.id, tx);
      await audit.append(tx, actor, {
        action: "sensors.key.rotated",
        target: { type: "sensor", id: existing.id },
        before: toInstance(existing, before, now).keys,
        after: toInstance(existing, after, now).keys,
        details: { new_key_prefix: keyRow.prefix, grace_seconds: grace, previous_keys_expire_at: oldUntil.toISOString(), previous_keys: expiring.map((k) => k.prefix) },
      });
      await changeFeed.publish(tx);
      afterCommit(tx, invalidateCache);
      return after;
    });
    return { ...toInstance(existing, keys, now), api_key: key };
  };

  // ---- ingestion ---------------------------------------------------------------------------
  const sensorOf = (actor: Actor): { id: string; name: string } => {
    const p = actor.principal;
    if (p.kind !== "system" || p.machine?.type !== "sensor") throw COMMON_ERRORS.FORBIDDEN("only a sensor key can post events to this endpoint");
    return { id: p.machine.id, name: p.name };
  };

  /**
   * Per-item checks the adapters leave to storage: sizes and what PostgreSQL cannot hold. The
   * serialised payload answers the common case: JSON.stringify escapes NUL and lone surrogates
   * (as \u0000, \udXXX), and no string is longer than the whole text; only a suspicious event is walked.
   */
  const checkEvent = (ev: NormalizedEvent, payloadJson: string, secretsJson: string): { code: string; reason: string; path: string } | undefined => {
    if (
      payloadJson.length <= settings.fieldMaxChars &&
      secretsJson.length <= settings.fieldMaxChars &&
      !/\\u(0000|d[89a-f])/i.test(payloadJson) &&
      !/\\u(0000|d[89a-f])/i.test(secretsJson) &&
      Buffer.byteLength(ev.rawOriginal, "utf8") <= settings.eventMaxBytes &&
      !(ev.occurredAt && Number.isNaN(ev.occurredAt.getTime())) &&
      (ev.detectedThreat === null || (ev.detectedThreat.length <= 100 && !badString(ev.detectedThreat, "", 100))) &&
      (ev.eventId === null || !badString(ev.eventId, "", settings.fieldMaxChars)) &&
      ev.raw.isWellFormed() &&
      !ev.raw.includes("\u0000") &&
      ev.rawOriginal.isWellFormed() &&
      !ev.rawOriginal.includes("\u0000")
    )
      return undefined;
    return checkEventSlowly(ev);
  };

  const checkEventSlowly = (ev: NormalizedEvent): { code: string; reason: string; path: string } | undefined => {
    if (Buffer.byteLength(ev.rawOriginal, "utf8") > settings.eventMaxBytes)
      return { code: "EVENT_TOO_LARGE", reason: `the event is larger than ${settings.eventMaxBytes} bytes`, path: "" };
    if (ev.occurredAt && Number.isNaN(ev.occurredAt.getTime())) return { code: "EVENT_INVALID_TIME", reason: "not a valid time", path: "occurred_at" };
    for (const [value, at] of [
      [ev.payload, "payload"],
      [ev.secrets, "payload"],
      [ev.detectedThreat, "detected_threat"],
      [ev.eventId, "event_id"],
      [ev.raw, ""],
      [ev.rawOriginal, ""],
    ] as const) {
      const bad = badString(value, at, at === "" ? Number.MAX_SAFE_INTEGER : settings.fieldMaxChars);
      if (bad) return { code: bad.message.startsWith("longer") ? "EVENT_FIELD_TOO_LARGE" : "EVENT_INVALID_STRING", reason: bad.message, path: bad.path };
    }
    if (ev.detectedThreat !== null && ev.detectedThreat.length > 100) return { code: "EVENT_FIELD_TOO_LARGE", reason: "longer than 100 characters", path: "detected_threat" };
    return undefined;
  };

  const prepare = (sensorId: string, index: number, ev: NormalizedEvent, receivedAt: Date, payloadJson: string): Prepared => {
    let payload = ev.payload;
    let raw = ev.raw;
    let sealed: { ciphertext: Buffer; keyId: string } | null = null;
    const hasSecrets = Object.keys(ev.secrets).length > 0;
    if (hasSecrets && vault.mode === "encrypted") sealed = vault.seal(ev.secrets);
    if (vault.mode === "plain") {
      raw = ev.rawOriginal;
      if (hasSecrets) payload = { ...payload, credentials: ev.secrets };
    }
    const key = eventKey(sensorId, ev);
    return {
      index,
      event: ev,
      keyHex: key.toString("hex"),
      row: {
        key,
        sourceIp: ev.sourceIp,
        eventType: ev.eventType,
        detectedThreat: ev.detectedThreat,
        occurredAt: ev.occurredAt ?? receivedAt,
        payload: payload === ev.payload ? payloadJson : JSON.stringify(payload),
        raw,
        secrets: sealed?.ciphertext ?? null,
        secretsKeyId: sealed?.keyId ?? null,
      },
    };
  };

  const isRetryable = (error: unknown) => ["40P01", "40001"].includes(pgErrorCode(error) ?? "");

  /**
   * Stores the valid items of one request in one transaction and answers per item. Items with the
   * same key inside the request come out as duplicates of the first; items already stored as
   * duplicates with the stored id.
   */
  const store = async (sensor: { id: string; name: string }, results: AdapterResult[]): Promise<ItemResult[]> => {
    const receivedAt = clock.now();
    const out: ItemResult[] = new Array(results.length);
    const firstByKey = new Map<string, Prepared>();
    const duplicatesInRequest: Prepared[] = [];
    results.forEach((r, index) => {
      if (!r.ok) {
        out[index] = { index, status: "rejected", code: r.code, reason: r.reason, path: r.path };
        return;
      }
      const payloadJson = JSON.stringify(r.event.payload);
      const secretsJson = JSON.stringify(r.event.secrets);
      const problem = checkEvent(r.event, payloadJson, secretsJson);
      if (problem) {
        out[index] = { index, status: "rejected", ...problem };
        return;
      }
      const p = prepare(sensor.id, index, r.event, receivedAt, payloadJson);
      if (firstByKey.has(p.keyHex)) duplicatesInRequest.push(p);
      else firstByKey.set(p.keyHex, p);
    });
    const unique = [...firstByKey.values()];
    if (!unique.length) return out;
    let inserted = new Map<string, string>();
    let existing = new Map<string, string>();
    // The minute's rollup is spread over ROLLUP_SHARDS rows (the minute plus 0..7 ms): one row per
    // (minute, sensor) would make every concurrent request of a sensor wait for the previous one's
    // commit. Readers sum by time range, so the split is invisible to them.
    rollupShard = (rollupShard + 1) % ROLLUP_SHARDS;
    const bucket = new Date(Math.floor(receivedAt.getTime() / 60_000) * 60_000 + rollupShard);
    const rows = unique.map((p) => p.row);
    // last_event_at to the second: written at most once a second per sensor and node, so parallel
    // requests of one sensor do not queue on its registry row.
    const touch = receivedAt.getTime() - (lastTouched.get(sensor.id) ?? 0) >= 1_000;
    for (let attempt = 0; ; attempt++) {
      try {
        if (!touch) {
          // Events and rollup are one statement, atomic and committed on its own: no BEGIN/COMMIT
          // round trips. The ids of duplicates are read after it (they were committed before).
          inserted = await repo.insertEvents(sensor.id, receivedAt, bucket, rows);
          existing = await repo.idsByKeys(unique.filter((p) => !inserted.has(p.keyHex)).map((p) => p.row.key));
          break;
        }
        ({ inserted, existing } = await db.transaction(async (tx) => {
          const ins = await repo.insertEvents(sensor.id, receivedAt, bucket, rows, tx);
          const ex = await repo.idsByKeys(unique.filter((p) => !ins.has(p.keyHex)).map((p) => p.row.key), tx);
          if (ins.size) {
            await repo.touchLastEvent(sensor.id, receivedAt, tx);
            afterCommit(tx, () => {
              if (lastTouched.size > 10_000) lastTouched.clear();
              lastTouched.set(sensor.id, receivedAt.getTime());
            });
          }
          return { inserted: ins, existing: ex };
        }));
        break;
      } catch (error) {
        if (attempt < 3 && isRetryable(error)) continue;
        throw error;
      }
    }
    const fresh: IngestedEvent[] = [];
    for (const p of unique) {
      const id = inserted.get(p.keyHex);
      if (id) {
        out[p.index] = { index: p.index, status: "accepted", id };
        fresh.push({
          id,
          sensorId: sensor.id,
          sensorName: sensor.name,
          sourceIp: p.row.sourceIp,
          eventType: p.event.eventType,
          detectedThreat: p.row.detectedThreat,
          occurredAt: p.row.occurredAt,
          receivedAt,
          payload: p.event.payload,
        });
      } else {
        const prior = existing.get(p.keyHex);
        out[p.index] = prior ? { index: p.index, status: "duplicate", id: prior } : { index: p.index, status: "duplicate" };
      }
    }
    for (const p of duplicatesInRequest) {
      const id = inserted.get(p.keyHex) ?? existing.get(p.keyHex);
      out[p.index] = id ? { index: p.index, status: "duplicate", id } : { index: p.index, status: "duplicate" };
    }
    if (fresh.length) {
      for (const listener of listeners) {
        try {
          listener(fresh);
        } catch (error) {
          log?.error({ err: error }, "an ingestion listener failed");
        }
      }
    }
    return out;
  };

  const itemRejected = (r: ItemResult): AppError =>
    new AppError(400, r.code ?? "EVENT_REJECTED", "Event rejected", `${r.path || "(event)"}: ${r.reason ?? "rejected"}`, {
      errors: [{ path: r.path ?? "", message: r.reason ?? "rejected" }],
    });

  const parseJson = (text: string): { ok: true; value: unknown } | { ok: false; message: string } => {
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch (error) {
      return { ok: false, message: (error as Error).message };
    }
  };

  /** POST /security/honeypot/events: one native event. */
  const ingestOne = async (actor: Actor, body: string): Promise<{ id: string; status: "accepted" | "duplicate" }> => {
    requirePermission(actor, "events:ingest");
    const sensor = sensorOf(actor);
    const parsed = parseJson(body);
    if (!parsed.ok) throw COMMON_ERRORS.MALFORMED_BODY(`the body is not valid JSON: ${parsed.message}`);
    const [result] = await store(sensor, [fromNative(parsed.value, body, clock.now())]);
    if (result!.status === "rejected") throw itemRejected(result!);
    return { id: result!.id!, status: result!.status as "accepted" | "duplicate" };
  };

  const totals = (results: ItemResult[]) => ({
    total: results.length,
    accepted: results.filter((r) => r.status === "accepted").length,
    duplicate: results.filter((r) => r.status === "duplicate").length,
    rejected: results.filter((r) => r.status === "rejected").length,
  });

  /** POST /security/honeypot/events/batch: a JSON array or NDJSON of native events. */
  const ingestBatch = async (actor: Actor, body: string, contentType: string) => {
    requirePermission(actor, "events:ingest");
    const sensor = sensorOf(actor);
    const split = splitBatch(body, contentType, settings.batchMaxEvents);
    if (split.tooMany)
      throw SENSOR_ERRORS.BATCH_TOO_LARGE(`a batch holds at most ${settings.batchMaxEvents} events`, { max_events: settings.batchMaxEvents });
    if (!split.items.length) throw SENSOR_ERRORS.EMPTY_BATCH("send a JSON array of events or one event per line (NDJSON)");
    const now = clock.now();
    const results = await store(
      sensor,
      split.items.map((item) =>
        item.error !== undefined ? { ok: false as const, code: "EVENT_MALFORMED", reason: item.error, path: "" } : fromNative(item.value, item.raw, now),
      ),
    );
    return { ...totals(results), results };
  };

  /**
   * Splunk HEC as Cowrie's output_splunk sends it: concatenated {"event": {...}, ...} envelopes.
   * Answers with HEC's own codes (the caller renders them); valid events are stored even when
   * another envelope of the request is refused.
   */
  const ingestHec = async (actor: Actor, body: string): Promise<{ status: number; body: Record<string, unknown>; results: ItemResult[] }> => {
    requirePermission(actor, "events:ingest");
    const sensor = sensorOf(actor);
    if (!body.trim()) return { status: 400, body: { text: "No data", code: 5 }, results: [] };
    const split = splitConcatenated(body, settings.batchMaxEvents);
    if (split.tooMany) return { status: 413, body: { text: `Too many events in one request (at most ${settings.batchMaxEvents})`, code: 6 }, results: [] };
    const hecErrors: { index: number; code: number; text: string }[] = [];
    const adapted: AdapterResult[] = split.items.map((item, index) => {
      const refuse = (code: number, text: string, reason: string): AdapterResult => {
        hecErrors.push({ index, code, text });
        return { ok: false, code: "EVENT_INVALID_HEC", reason, path: "event" };
      };
      if (item.error !== undefined) return refuse(6, "Invalid data format", item.error);
      const envelope = item.value;
      if (envelope === null || typeof envelope !== "object" || Array.isArray(envelope)) return refuse(6, "Invalid data format", "a HEC envelope is a JSON object");
      if (!("event" in envelope)) return refuse(12, "Event field is required", "the envelope has no event field");
      const event = (envelope as { event: unknown }).event;
      if (event === null || event === "" || (typeof event === "object" && !Array.isArray(event) && Object.keys(event).length === 0))
        return refuse(13, "Event field cannot be blank", "the event field is empty");
      let r: AdapterResult;
      if (typeof event === "string") {
        // A raw-text event: accepted when the text is a Cowrie JSON event.
        const parsed = parseJson(event);
        if (!parsed.ok) return refuse(6, "Invalid data format", "the event is text, not a Cowrie JSON event");
        r = fromCowrie(parsed.value, event);
      } else {
        // The envelope itself: the adapter reads the event inside it and the envelope's time.
        r = fromCowrie(envelope, item.raw);
      }
      if (!r.ok) hecErrors.push({ index, code: 6, text: "Invalid data format" });
      return r;
    });
    const results = await store(sensor, adapted);
    for (const r of results) if (r.status === "rejected" && !hecErrors.some((e) => e.index === r.index)) hecErrors.push({ index: r.index, code: 6, text: "Invalid data format" });
    if (hecErrors.length) {
      const first = hecErrors.sort((a, b) => a.index - b.index)[0]!;
      return { status: 400, body: { text: first.text, code: first.code, "invalid-event-number": first.index }, results };
    }
    return { status: 200, body: { text: "Success", code: 0 }, results };
  };

  /** OpenCanary's WebhookHandler: {"message": "<json line>"} as JSON or as a form field. */
  const ingestOpenCanary = async (actor: Actor, body: string, contentType: string): Promise<{ id: string; status: "accepted" | "duplicate" }> => {
    requirePermission(actor, "events:ingest");
    const sensor = sensorOf(actor);
    // The adapter unwraps {"message": ...} itself (a custom log format may prefix the JSON line).
    let value: unknown;
    let text: string;
    if (/^application\/x-www-form-urlencoded/i.test(contentType)) {
      const message = new URLSearchParams(body).get("message");
      if (message === null) throw validationError([{ path: "message", message: 'required: OpenCanary\'s log line as message=<json line>' }]);
      value = { message };
      text = message;
    } else {
      const parsed = parseJson(body);
      if (!parsed.ok) throw COMMON_ERRORS.MALFORMED_BODY(`the body is not valid JSON: ${parsed.message}`);
      value = parsed.value;
      text = body;
      const v = value as { message?: unknown; logtype?: unknown } | null;
      if (v === null || typeof v !== "object" || (v.logtype === undefined && typeof v.message !== "string"))
        throw validationError([{ path: "message", message: 'required: OpenCanary\'s log line as {"message": "<json line>"}' }]);
    }
    const [result] = await store(sensor, [fromOpenCanary(value, text)]);
    if (result!.status === "rejected") throw itemRejected(result!);
    return { id: result!.id!, status: result!.status as "accepted" | "duplicate" };
  };

  /** Events from another domain (CrowdSec watcher alerts) for a sensor it registered with ensureSensor. */
  const ingestNormalized = async (actor: Actor, sensorId: string, events: NormalizedEvent[]): Promise<ItemResult[]> => {
    requirePermission(actor, "events:ingest");
    const p = actor.principal;
    if (p.kind === "system" && p.machine?.type === "sensor" && p.machine.id !== sensorId)
      throw COMMON_ERRORS.FORBIDDEN("a sensor key can only post events for its own sensor");
    const sensor = await loadInstance(sensorId);
    if (!sensor.active) throw SENSOR_ERRORS.SENSOR_DEACTIVATED(`sensor ${sensor.name} is deactivated`, { sensor_id: sensor.id });
    // Another domain writes only into an agent's (keyless) sensor: its events must never count as a honeypot's.
    const ownSensor = p.kind === "system" && p.machine?.type === "sensor";
    if (!ownSensor && (await repo.hasKey(sensor.id)))
      throw COMMON_ERRORS.FORBIDDEN(`sensor ${sensor.name} is a honeypot's (it holds a key): only its own key posts events for it`);
    // These did not come through an adapter's validation: what the table's checks would refuse
    // (and fail the whole batch with) is refused per item here.
    return store(
      { id: sensor.id, name: sensor.name },
      events.map((event): AdapterResult => {
        if (typeof event.sourceIp !== "string" || !CANONICAL_IP.test(event.sourceIp) || normalizeIp(event.sourceIp) !== event.sourceIp)
          return { ok: false, code: "EVENT_INVALID_SOURCE_IP", reason: "sourceIp must be an IPv4 or IPv6 address in canonical form", path: "source_ip" };
        if (!EVENT_TYPE_SET.has(event.eventType)) return { ok: false, code: "EVENT_INVALID_TYPE", reason: `eventType must be one of ${EVENT_TYPES.join(", ")}`, path: "event_type" };
        return { ok: true, event };
      }),
    );
  };

  const onIngested = (listener: (events: IngestedEvent[]) => void): void => {
    listeners.push(listener);
  };

  // ---- reads -------------------------------------------------------------------------------
  const credentialsOf = (row: EventRow, revealed: boolean): { credentials: Record<string, string> | null; payload: Record<string, unknown>; raw: string } => {
    if (row.secrets && row.secrets_key_id) {
      let secrets: Record<string, string>;
      try {
        secrets = vault.open(row.secrets, row.secrets_key_id);
      } catch (error) {
        // A key no longer configured (crypto-shredded) or a damaged record: say so, never 500.
        log?.warn({ event_id: row.id, key_id: row.secrets_key_id, err: { message: (error as Error).message } }, "captured credentials could not be decrypted");
        return { credentials: { unavailable: `encrypted under key ${row.secrets_key_id}, which cannot open it` }, payload: row.payload, raw: row.raw };
      }
      return { credentials: revealed ? secrets : vault.mask(secrets), payload: row.payload, raw: row.raw };
    }
    const plain = row.payload.credentials;
    if (plain !== null && typeof plain === "object" && !Array.isArray(plain)) {
      const { credentials, ...rest } = row.payload;
      const secrets = credentials as Record<string, string>;
      // Plain mode keeps the original text; it holds the credentials, so only secret readers see it.
      return revealed
        ? { credentials: secrets, payload: rest, raw: row.raw }
        : { credentials: vault.mask(secrets), payload: rest, raw: "[masked: holds captured credentials; needs telemetry:secrets]" };
    }
    return { credentials: null, payload: row.payload, raw: row.raw };
  };

  const toEventItem = (row: EventRow, revealed: boolean): EventItem => {
    const c = credentialsOf(row, revealed);
    return {
      id: row.id,
      sensor_id: row.sensor_id,
      sensor_name: row.sensor_name,
      source_ip: row.source_ip,
      event_type: row.event_type as EventType,
      detected_threat: row.detected_threat,
      occurred_at: row.occurred_at.toISOString(),
      received_at: row.received_at.toISOString(),
      payload: c.payload,
      credentials: c.credentials,
      raw: c.raw,
      processed: row.processed_at !== null,
      processed_at: row.processed_at?.toISOString() ?? null,
      processed_by: row.processed_by,
    };
  };

  const decodeEventCursor = (cursor: string | undefined): string | undefined => {
    if (cursor === undefined) return undefined;
    const id = Buffer.from(cursor, "base64url").toString("utf8");
    if (!EVENT_ID_RE.test(id)) throw validationError([{ path: "cursor", message: "not a cursor returned by this endpoint" }]);
    return id;
  };

  const listEvents = async (actor: Actor, query: ListEventsQuery): Promise<Page<EventItem>> => {
    requirePermission(actor, "events:read");
    let sourceIp: string | undefined;
    if (query.source_ip !== undefined) {
      sourceIp = normalizeIp(query.source_ip) ?? undefined;
      if (!sourceIp) throw validationError([{ path: "source_ip", message: `"${query.source_ip}" is not an IPv4 or IPv6 address` }]);
    }
    const rows = await repo.listEvents(
      {
        sensorId: query.sensor,
        sourceIp,
        eventType: query.event_type,
        threat: query.threat,
        since: query.since ? new Date(query.since) : undefined,
        until: query.until ? new Date(query.until) : undefined,
        unprocessedOnly: query.unprocessed_only,
      },
      query.limit + 1,
      decodeEventCursor(query.cursor),
    );
    const revealed = hasPermission(actor.principal, "telemetry:secrets");
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    return {
      items: page.map((r) => toEventItem(r, revealed)),
      next_cursor: more ? Buffer.from(page[page.length - 1]!.id).toString("base64url") : null,
    };
  };

  const getEvent = async (actor: Actor, id: string): Promise<EventItem> => {
    requirePermission(actor, "events:read");
    const row = EVENT_ID_RE.test(id) ? await repo.getEvent(id) : undefined;
    if (!row) throw SENSOR_ERRORS.EVENT_NOT_FOUND(`no event with id ${id}`);
    return toEventItem(row, hasPermission(actor.principal, "telemetry:secrets"));
  };

  /** Idempotent: the first call records who and when (audited); later calls answer the same state. */
  const markProcessed = async (actor: Actor, id: string): Promise<EventItem> => {
    requirePermission(actor, "events:triage");
    const now = clock.now();
    const row = await db.transaction(async (tx) => {
      const event = EVENT_ID_RE.test(id) ? await repo.getEvent(id, tx) : undefined;
      if (!event) throw SENSOR_ERRORS.EVENT_NOT_FOUND(`no event with id ${id}`);
      const { row: state, created } = await repo.markProcessed(id, now, actorName(actor), tx);
      if (created)
        await audit.append(tx, actor, {
          action: "sensors.event.processed",
          target: { type: "honeypot_event", id },
          after: { processed_at: state.processedAt.toISOString(), processed_by: state.processedBy },
          details: { sensor_id: event.sensor_id, source_ip: event.source_ip, event_type: event.event_type },
        });
      return { ...event, processed_at: state.processedAt, processed_by: state.processedBy };
    });
    return toEventItem(row, hasPermission(actor.principal, "telemetry:secrets"));
  };

  /** What one address did lately, by received time (detection, dry-runs). */
  const sourceActivity = async (ip: string, now: Date) => {
    const canonical = normalizeIp(ip) ?? ip;
    return repo.sourceActivity(canonical, new Date(now.getTime() - 3_600_000), new Date(now.getTime() - 86_400_000));
  };

  /** The dashboard's honeypot block: registry counts and 24 h of rollups, never an events scan. */
  const summary = async (now: Date) => repo.summary(new Date(now.getTime() - 86_400_000));

  const toIngested = (row: EventRow): IngestedEvent => {
    const { credentials: _dropped, ...payload } = row.payload;
    return {
      id: row.id,
      sensorId: row.sensor_id,
      sensorName: row.sensor_name ?? row.sensor_id,
      sourceIp: row.source_ip,
      eventType: row.event_type as EventType,
      detectedThreat: row.detected_threat,
      occurredAt: row.occurred_at,
      receivedAt: row.received_at,
      payload,
    };
  };

  /** Events received since `since`, oldest first, after `afterId` (detection's replay at startup). */
  const eventsSince = async (since: Date, afterId: string | null, limit: number): Promise<IngestedEvent[]> =>
    (await repo.eventsSince(since, afterId, limit)).map(toIngested);

  return {
    authenticateKey,
    invalidateCache,
    createInstance,
    ensureSensor,
    showInstance,
    listInstances,
    deactivate,
    rotateKey,
    ingestOne,
    ingestBatch,
    ingestHec,
    ingestOpenCanary,
    ingestNormalized,
    onIngested,
    listEvents,
    getEvent,
    markProcessed,
    sourceActivity,
    summary,
    eventsSince,
  };
};
export type SensorsService = ReturnType<typeof sensorsService>;
