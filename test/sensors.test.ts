// Honeypot sensors through the HTTP API on a real database: the registry (key shown once, rotation
// with a grace period on a test clock, deactivation), sensor-key authentication and what a key can
// reach, ingestion of native events, batches, stock Cowrie over Splunk HEC (every fixture file, sent
// twice) and OpenCanary's webhook, bad input of every kind answered per item or as problem+json and
// never stored partially, listing and triage, and the deactivate_honeypot action.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, DB_KINDS, testConfig, type TestApp } from "./helpers/harness.ts";
import { rememberSecret } from "./helpers/secret-scan.ts";
import { installRules } from "./helpers/action-rules.ts";
import { manualClock } from "../src/lib/time.ts";
import { systemActor } from "../src/domains/identity/principal.ts";

type Json = Record<string, any>;
type Key = { token: string; userId: string; prefix: string };

const FIXTURES = join(import.meta.dirname, "..", "..", "shared", "fixtures", "cowrie");

/** The fixture lines as stock Cowrie's output_splunk wraps them: one HEC envelope per event. */
const cowrieEnvelopes = (file: string): { event: Json; envelope: string }[] =>
  readFileSync(join(FIXTURES, file), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((line) => {
      const event = JSON.parse(line) as Json;
      // Cowrie: splunkentry = {index?, source?, sourcetype?, host: event["sensor"], event}; json.dumps.
      return { event, envelope: JSON.stringify({ sourcetype: "cowrie", host: event.sensor, event }) };
    });

describe.each(DB_KINDS)("sensors on %s", (kind) => {
  let t: TestApp;
  const clock = manualClock("2026-11-20T09:00:00.000Z");
  let analyst: Key, approver: Key, executor: Key, viewer: Key;

  beforeAll(async () => {
    t = await createTestApp(kind, { clock, config: { "sensors.batchMaxEvents": 2_000, "sensors.eventMaxBytes": 8_192, "sensors.fieldMaxChars": 2_048 } });
    analyst = await createKeyForRole(t.db, "analyst");
    approver = await createKeyForRole(t.db, "approver");
    executor = await createKeyForRole(t.db, "executor");
    viewer = await createKeyForRole(t.db, "viewer");
  });
  afterAll(async () => t?.close());

  const call = (method: "GET" | "POST", url: string, token: string, payload?: unknown) =>
    t.app.inject({ method, url, headers: t.auth(token), ...(payload !== undefined ? { payload: payload as object } : {}) });
  const register = async (name: string, type = "cowrie") => {
    const res = await call("POST", "/security/honeypot/instances", t.adminToken, { name, honeypot_type: type, location: "dmz-1", metadata: { rack: 4 } });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json() as Json;
    rememberSecret(body.api_key);
    return { id: body.id as string, key: body.api_key as string, body };
  };
  const post = (url: string, key: string, payload: string, contentType: string | null = "application/json", header = "x-honeypot-key") =>
    t.app.inject({
      method: "POST",
      url,
      headers: { ...(header === "authorization" ? { authorization: `Splunk ${key}` } : { [header]: key }), ...(contentType ? { "content-type": contentType } : {}) },
      payload,
    });
  const problem = (res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, status: number, code: string) => {
    expect(res.statusCode, JSON.stringify(res.json())).toBe(status);
    expect(String(res.headers["content-type"])).toContain("application/problem+json");
    expect((res.json() as Json).code).toBe(code);
    return res.json() as Json;
  };
  const count = async (sensorId: string) => Number((await t.db.query<{ n: string }>("SELECT count(*) AS n FROM honeypot_events WHERE sensor_id = $1", [sensorId]))[0]!.n);
  const auditActions = async (type: string, id: string) =>
    ((await call("GET", `/audit/entries?target_type=${type}&target_id=${id}&limit=1000`, viewer.token)).json().items as Json[]).map((e) => e.action);

  it("registers a sensor and shows its key once, stored only as a hash", async () => {
    const { id, key, body } = await register("ssh-trap-registry");
    expect(key).toMatch(/^phk_[A-Za-z0-9_-]{43}$/);
    expect(body).toMatchObject({ name: "ssh-trap-registry", honeypot_type: "cowrie", location: "dmz-1", metadata: { rack: 4 }, active: true, created_by: "admin", last_event_at: null });
    expect(body.keys).toEqual([{ prefix: key.slice(0, 12), created_at: body.created_at, expires_at: null, revoked_at: null, status: "active" }]);
    const shown = await call("GET", `/security/honeypot/instances/${id}`, viewer.token);
    expect(shown.statusCode).toBe(200);
    expect(shown.body).not.toContain(key);
    expect(shown.json().api_key).toBeUndefined();
    const list = await call("GET", "/security/honeypot/instances?limit=1000", viewer.token);
    expect(list.json().items.map((i: Json) => i.id)).toContain(id);
    expect(list.body).not.toContain(key);
    expect(list.json().items.find((i: Json) => i.id === id).keys).toEqual(body.keys);
    const other = await register("ssh-trap-registry-2");
    const first = (await call("GET", "/security/honeypot/instances?limit=1", viewer.token)).json();
    expect(first.items.map((i: Json) => i.id)).toEqual([other.id]);
    const second = (await call("GET", `/security/honeypot/instances?limit=1&cursor=${first.next_cursor}`, viewer.token)).json();
    expect(second.items.map((i: Json) => i.id)).toEqual([id]);
    expect((await call("GET", "/security/honeypot/instances?active=false&limit=1000", viewer.token)).json().items).toEqual([]);
    const stored = await t.db.query<{ key_hash: unknown }>("SELECT key_hash FROM honeypot_keys WHERE sensor_id = $1", [id]);
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(key.slice(4));
    expect(await auditActions("sensor", id)).toEqual(["sensors.instance.created"]);
    const entries = (await call("GET", `/audit/entries?target_type=sensor&target_id=${id}`, viewer.token)).body;
    expect(entries).not.toContain(key);
    // Names are unique regardless of case; bad input names its field.
    const again = problem(await call("POST", "/security/honeypot/instances", t.adminToken, { name: "SSH-TRAP-REGISTRY", honeypot_type: "cowrie" }), 409, "SENSOR_NAME_TAKEN");
    expect(again.existing_sensor_id).toBe(id);
    const bad = problem(await call("POST", "/security/honeypot/instances", t.adminToken, { name: "x", honeypot_type: "Not A Type!" }), 400, "VALIDATION_FAILED");
    expect(bad.errors.map((e: Json) => e.path)).toEqual(["honeypot_type"]);
    problem(await call("POST", "/security/honeypot/instances", analyst.token, { name: "nope", honeypot_type: "cowrie" }), 403, "FORBIDDEN");
    problem(await call("GET", "/security/honeypot/instances/not-a-uuid", viewer.token), 404, "SENSOR_NOT_FOUND");
  });

  it("accepts one native event, answers a retry as a duplicate, and stores the raw original", async () => {
    const { id, key } = await register("native-1", "custom");
    const event = { source_ip: "203.0.113.10", event_type: "exploitation", payload: { path: "/cgi-bin/luci", method: "POST" }, detected_threat: "rce_attempt", event_id: "evt-0001", occurred_at: "2026-11-20T08:59:00Z" };
    const first = await post("/security/honeypot/events", key, JSON.stringify(event));
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toMatchObject({ status: "accepted" });
    // Same event_id, different bytes: still the same event.
    const retry = await post("/security/honeypot/events", key, JSON.stringify({ ...event, payload: { method: "POST", path: "/cgi-bin/luci" } }));
    expect(retry.json()).toEqual({ id: first.json().id, status: "duplicate" });
    // No event_id: identical bytes are the same event, different bytes another one.
    const bare = JSON.stringify({ source_ip: "203.0.113.11", event_type: "scan" });
    const a = (await post("/security/honeypot/events", key, bare, null)).json();
    expect((await post("/security/honeypot/events", key, bare, "text/plain")).json()).toEqual({ id: a.id, status: "duplicate" });
    expect(await count(id)).toBe(2);
    const listed = (await call("GET", `/security/honeypot/events?sensor=${id}`, viewer.token)).json().items as Json[];
    expect(listed.map((e) => e.id)).toEqual([a.id, first.json().id]);
    expect(listed[1]).toMatchObject({
      sensor_id: id,
      sensor_name: "native-1",
      source_ip: "203.0.113.10",
      event_type: "exploitation",
      detected_threat: "rce_attempt",
      occurred_at: "2026-11-20T08:59:00.000Z",
      received_at: "2026-11-20T09:00:00.000Z",
      payload: { path: "/cgi-bin/luci", method: "POST" },
      raw: JSON.stringify(event),
      processed: false,
    });
    expect(listed[0]!.occurred_at).toBe("2026-11-20T09:00:00.000Z");
    const shown = (await call("GET", `/security/honeypot/instances/${id}`, viewer.token)).json();
    expect(shown.last_event_at).toBe("2026-11-20T09:00:00.000Z");
  });

  it("answers a batch per item: valid items are stored, rejected ones are not, duplicates inside the batch are duplicates", async () => {
    const { id, key } = await register("batch-1", "custom");
    const items = [
      { source_ip: "198.51.100.1", event_type: "auth_attempt", payload: { username: "root" } },
      { source_ip: "198.51.100.1", event_type: "auth_attempt", payload: { username: "root" } },
      { source_ip: "not-an-ip", event_type: "scan" },
      { source_ip: "198.51.100.2", event_type: 7 },
      { source_ip: "198.51.100.3", event_type: "scan", extra: true },
      { source_ip: "198.51.100.4", event_type: "command", payload: { cmd: "x".repeat(5_000) } },
      { source_ip: "198.51.100.5", event_type: "command", payload: { cmd: "a\u0000b" } },
      { source_ip: "::ffff:198.51.100.6", event_type: "connection" },
      { source_ip: "198.51.100.7", event_type: "command", payload: { nested: { cmd: "\ud800" } } },
      // Many short fields: large in total (over fieldMaxChars), no field too long.
      { source_ip: "198.51.100.8", event_type: "command", payload: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${i}`, "y".repeat(50)])) },
    ];
    const res = await post("/security/honeypot/events/batch", key, JSON.stringify(items));
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ total: 10, accepted: 3, duplicate: 1, rejected: 6 });
    const r = body.results as Json[];
    expect(r.map((x) => x.status)).toEqual(["accepted", "duplicate", "rejected", "rejected", "rejected", "rejected", "rejected", "accepted", "rejected", "accepted"]);
    expect([r[8]!.code, r[8]!.path]).toEqual(["EVENT_INVALID_STRING", "payload.nested.cmd"]);
    expect(r[1]!.id).toBe(r[0]!.id);
    expect(r.slice(2, 7).map((x) => [x.code, x.path])).toEqual([
      ["EVENT_INVALID_SOURCE_IP", "source_ip"],
      ["EVENT_INVALID_TYPE", "event_type"],
      ["EVENT_UNKNOWN_FIELD", "extra"],
      ["EVENT_FIELD_TOO_LARGE", "payload.cmd"],
      ["EVENT_INVALID_STRING", "payload.cmd"],
    ]);
    for (const x of r.slice(2, 7)) expect(typeof x.reason).toBe("string");
    expect(await count(id)).toBe(3);
    const stored = (await call("GET", `/security/honeypot/events?sensor=${id}`, viewer.token)).json().items as Json[];
    expect(stored.map((e) => e.source_ip).sort()).toEqual(["198.51.100.1", "198.51.100.6", "198.51.100.8"]);

    // NDJSON: a malformed line is one rejected item; the same batch sent again adds nothing.
    const ndjson = ['{"source_ip":"192.0.2.1","event_type":"scan"}', "{not json", '{"source_ip":"192.0.2.2","event_type":"scan"}', ""].join("\n");
    const nd = (await post("/security/honeypot/events/batch", key, ndjson, "application/x-ndjson")).json();
    expect(nd).toMatchObject({ total: 3, accepted: 2, duplicate: 0, rejected: 1 });
    expect(nd.results[1]).toMatchObject({ index: 1, status: "rejected", code: "EVENT_MALFORMED" });
    const again = (await post("/security/honeypot/events/batch", key, ndjson, "application/x-ndjson")).json();
    expect(again).toMatchObject({ total: 3, accepted: 0, duplicate: 2, rejected: 1 });
    expect(again.results[0].id).toBe(nd.results[0].id);
    expect(await count(id)).toBe(5);
  });

  it("refuses oversized, empty and malformed requests with problem+json and stores nothing", async () => {
    const { id, key } = await register("bad-input-1", "custom");
    const tooMany = Array.from({ length: 2_001 }, (_, i) => ({ source_ip: "192.0.2.9", event_type: "scan", event_id: `e${i}` }));
    const many = problem(await post("/security/honeypot/events/batch", key, JSON.stringify(tooMany)), 413, "BATCH_TOO_LARGE");
    expect(many.max_events).toBe(2_000);
    // Over the byte limit (10 MiB default): refused before it is read in full.
    problem(await post("/security/honeypot/events/batch", key, `[${JSON.stringify({ source_ip: "192.0.2.9", event_type: "scan", payload: { a: "x".repeat(11 * 1_048_576) } })}]`), 413, "PAYLOAD_TOO_LARGE");
    // One event over eventMaxBytes (8 KiB here).
    problem(await post("/security/honeypot/events", key, JSON.stringify({ source_ip: "192.0.2.9", event_type: "scan", payload: { a: "x".repeat(9_000) } })), 413, "PAYLOAD_TOO_LARGE");
    problem(await post("/security/honeypot/events/batch", key, "[]"), 400, "EMPTY_BATCH");
    problem(await post("/security/honeypot/events/batch", key, ""), 400, "EMPTY_BATCH");
    problem(await post("/security/honeypot/events", key, "{nope"), 400, "MALFORMED_BODY");
    const wrong = problem(await post("/security/honeypot/events", key, JSON.stringify({ source_ip: "10.0.0.1", event_type: "scan", payload: [1, 2] })), 400, "EVENT_INVALID_FIELD");
    expect(wrong.errors).toEqual([{ path: "payload", message: expect.any(String) }]);
    const ip = problem(await post("/security/honeypot/events", key, JSON.stringify({ source_ip: "999.1.1.1", event_type: "scan" })), 400, "EVENT_INVALID_SOURCE_IP");
    expect(ip.errors[0].path).toBe("source_ip");
    const nul = problem(await post("/security/honeypot/events", key, JSON.stringify({ source_ip: "10.0.0.1", event_type: "scan", payload: { ["k\u0000"]: 1 } })), 400, "EVENT_INVALID_STRING");
    expect(nul.errors[0].path).toBe("payload.k\u0000");
    // A raw NUL byte is not JSON at all.
    problem(await post("/security/honeypot/events", key, '{"source_ip":"10.0.0.1","event_type":"scan\u0000"}'), 400, "VALIDATION_FAILED");
    const future = problem(await post("/security/honeypot/events", key, JSON.stringify({ source_ip: "10.0.0.1", event_type: "scan", occurred_at: "2026-11-20T10:00:00Z" })), 400, "EVENT_OCCURRED_IN_FUTURE");
    expect(future.errors[0].path).toBe("occurred_at");
    expect(await count(id)).toBe(0);
  });

  it("authenticates sensors by key: missing, unknown, deactivated; a sensor key reaches nothing but ingestion", async () => {
    const { id, key } = await register("auth-1", "custom");
    const event = JSON.stringify({ source_ip: "192.0.2.50", event_type: "scan" });
    const missing = problem(await t.app.inject({ method: "POST", url: "/security/honeypot/events", headers: { "content-type": "application/json" }, payload: event }), 401, "UNAUTHENTICATED");
    expect(missing.detail).toContain("X-HONEYPOT-KEY");
    problem(await post("/security/honeypot/events", "phk_" + "A".repeat(43), event), 401, "SENSOR_KEY_INVALID");
    problem(await post("/security/honeypot/events", "garbage", event), 401, "SENSOR_KEY_INVALID");
    // A user's API key is not a sensor key, and a sensor key is not an API key.
    problem(await post("/security/honeypot/events", viewer.token, event), 401, "SENSOR_KEY_INVALID");
    problem(await t.app.inject({ method: "POST", url: "/security/honeypot/events", headers: { ...t.auth(), "content-type": "application/json" }, payload: event }), 401, "UNAUTHENTICATED");
    for (const [method, url] of [
      ["GET", "/security/honeypot/events"],
      ["GET", "/security/honeypot/instances"],
      ["GET", `/security/honeypot/instances/${id}`],
      ["POST", `/security/honeypot/instances/${id}/deactivate`],
      ["GET", "/auth/whoami"],
      ["GET", "/security/policy/check?ip=192.0.2.1"],
      ["GET", "/audit/entries"],
    ] as const) {
      const asHeader = await t.app.inject({ method, url, headers: { "x-honeypot-key": key } });
      expect(asHeader.statusCode, `${method} ${url}`).toBe(401);
      const asBearer = await t.app.inject({ method, url, headers: { authorization: `Bearer ${key}` } });
      expect(asBearer.statusCode, `${method} ${url}`).toBe(401);
    }
    expect((await post("/security/honeypot/events", key, event)).statusCode).toBe(201);
    // Deactivation takes effect at once (the key was just cached by the accepted post).
    const deactivated = await call("POST", `/security/honeypot/instances/${id}/deactivate`, t.adminToken, { reason: "decommissioned" });
    expect(deactivated.statusCode, deactivated.body).toBe(200);
    expect(deactivated.json()).toMatchObject({ active: false, deactivated_by: "admin", deactivated_at: "2026-11-20T09:00:00.000Z" });
    const refused = problem(await post("/security/honeypot/events", key, JSON.stringify({ source_ip: "192.0.2.51", event_type: "scan" })), 403, "SENSOR_DEACTIVATED");
    expect(refused.detail).toContain("deactivated");
    expect(refused.detail).toContain("auth-1");
    expect(await post("/services/collector/event", key, '{"event":{"eventid":"cowrie.session.connect","src_ip":"192.0.2.51"}}', "application/json", "authorization").then((r) => [r.statusCode, r.json()])).toEqual([
      403,
      { text: "Token disabled", code: 1 },
    ]);
    problem(await call("POST", `/security/honeypot/instances/${id}/deactivate`, t.adminToken, {}), 409, "SENSOR_NOT_ACTIVE");
    problem(await call("POST", `/security/honeypot/instances/${id}/rotate-key`, t.adminToken, {}), 409, "SENSOR_NOT_ACTIVE");
    expect(await auditActions("sensor", id)).toEqual(["sensors.instance.created", "sensors.instance.deactivated"]);
    expect(await count(id)).toBe(1);
  });

  it("rotates a key: the new one works at once, the old one until the grace period ends", async () => {
    const { id, key: oldKey } = await register("rotate-1", "custom");
    const rotated = await call("POST", `/security/honeypot/instances/${id}/rotate-key`, t.adminToken, { grace_seconds: 600 });
    expect(rotated.statusCode, rotated.body).toBe(200);
    const newKey = rotated.json().api_key as string;
    rememberSecret(newKey);
    expect(newKey).not.toBe(oldKey);
    expect(rotated.json().keys.map((k: Json) => [k.prefix, k.status, k.expires_at])).toEqual([
      [oldKey.slice(0, 12), "expiring", "2026-11-20T09:10:00.000Z"],
      [newKey.slice(0, 12), "active", null],
    ]);
    const send = (key: string, n: number) => post("/security/honeypot/events", key, JSON.stringify({ source_ip: "192.0.2.60", event_type: "scan", event_id: `r${n}` }));
    expect((await send(newKey, 1)).statusCode).toBe(201);
    expect((await send(oldKey, 2)).statusCode).toBe(201);
    clock.advance(599_000);
    expect((await send(oldKey, 3)).statusCode).toBe(201);
    clock.advance(1_000);
    const expired = problem(await send(oldKey, 4), 401, "SENSOR_KEY_EXPIRED");
    expect(expired.detail).toContain(oldKey.slice(0, 12));
    expect(expired.detail).not.toContain(oldKey);
    expect(await post("/services/collector", oldKey, '{"event":{"src_ip":"192.0.2.60"}}', "application/json", "authorization").then((r) => [r.statusCode, r.json()])).toEqual([
      403,
      { text: "Invalid token", code: 4 },
    ]);
    expect((await send(newKey, 5)).statusCode).toBe(201);
    // Default grace: sensors.keyRotationGraceSeconds (one day).
    const secondRes = await call("POST", `/security/honeypot/instances/${id}/rotate-key`, t.adminToken);
    expect(secondRes.statusCode, secondRes.body).toBe(200);
    const second = secondRes.json();
    rememberSecret(second.api_key);
    expect(second.keys.find((k: Json) => k.prefix === newKey.slice(0, 12)).expires_at).toBe(new Date(clock.now().getTime() + 86_400_000).toISOString());
    expect(await auditActions("sensor", id)).toEqual(["sensors.instance.created", "sensors.key.rotated", "sensors.key.rotated"]);
    expect(JSON.stringify(await call("GET", `/audit/entries?target_type=sensor&target_id=${id}`, viewer.token).then((r) => r.json()))).not.toContain(newKey);
    expect(await count(id)).toBe(4);
  });

  it("ingests every Cowrie fixture file through HEC as stock Cowrie sends it; counts match the files; a resend adds nothing", async () => {
    const { id, key } = await register("cowrie-hec", "cowrie");
    const files = readdirSync(FIXTURES).filter((f) => f.startsWith("cowrie.json")).sort();
    expect(files.length).toBeGreaterThanOrEqual(3);
    const all = files.flatMap(cowrieEnvelopes);
    const byEventid = new Map<string, number>();
    const byIp = new Map<string, number>();
    for (const { event } of all) {
      byEventid.set(event.eventid, (byEventid.get(event.eventid) ?? 0) + 1);
      byIp.set(event.src_ip, (byIp.get(event.src_ip) ?? 0) + 1);
    }
    const sendAll = async () => {
      // Several envelopes per request, back to back, as a HEC client batches them.
      for (let i = 0; i < all.length; i += 97) {
        const res = await post(i % 2 ? "/services/collector" : "/services/collector/event", key, all.slice(i, i + 97).map((e) => e.envelope).join(i % 3 ? "" : "\n"), "application/json", "authorization");
        expect([res.statusCode, res.json()]).toEqual([200, { text: "Success", code: 0 }]);
      }
    };
    await sendAll();
    const stored = async () => ({
      eventids: Object.fromEntries(
        (await t.db.query<{ k: string; n: string }>("SELECT payload->>'sensor_event' AS k, count(*) AS n FROM honeypot_events WHERE sensor_id = $1 GROUP BY 1", [id])).map((r) => [r.k, Number(r.n)]),
      ),
      ips: Object.fromEntries((await t.db.query<{ k: string; n: string }>("SELECT source_ip AS k, count(*) AS n FROM honeypot_events WHERE sensor_id = $1 GROUP BY 1", [id])).map((r) => [r.k, Number(r.n)])),
    });
    const first = await stored();
    expect(first.eventids).toEqual(Object.fromEntries(byEventid));
    expect(first.ips).toEqual(Object.fromEntries(byIp));
    expect(await count(id)).toBe(all.length);
    await sendAll();
    expect(await stored()).toEqual(first);
    expect(await count(id)).toBe(all.length);
    // Mapped types and the credentials: never in the payload or the raw text.
    const types = Object.fromEntries(
      (await t.db.query<{ k: string; t: string }>("SELECT DISTINCT payload->>'sensor_event' AS k, event_type AS t FROM honeypot_events WHERE sensor_id = $1", [id])).map((r) => [r.k, r.t]),
    );
    expect(types).toMatchObject({ "cowrie.session.connect": "connection", "cowrie.login.failed": "auth_attempt", "cowrie.login.success": "auth_attempt", "cowrie.command.input": "command", "cowrie.session.closed": "session" });
    const failed = all.find((e) => e.event.eventid === "cowrie.login.failed" && e.event.password.length >= 6)!.event;
    const rows = await t.db.query<{ payload: unknown; raw: string }>("SELECT payload, raw FROM honeypot_events WHERE sensor_id = $1 AND payload->>'sensor_event' = 'cowrie.login.failed'", [id]);
    expect(JSON.stringify(rows)).not.toContain(`"${failed.password}"`);
    // Summary and per-source activity for the other domains.
    const summary = await t.app.services.sensors.summary(clock.now());
    expect(summary.recent_events).toBeGreaterThanOrEqual(all.length);
    const busiest = [...byIp.entries()].sort((a, b) => b[1] - a[1])[0]!;
    expect(await t.app.services.sensors.sourceActivity(busiest[0], clock.now())).toMatchObject({ events_1h: busiest[1], hits_24h: busiest[1], sensors: ["cowrie-hec"] });
  });

  it("answers HEC errors in HEC's format and stores the valid envelopes of a partly bad request", async () => {
    const { id, key } = await register("hec-errors", "cowrie");
    const hec = (body: string, headers: Record<string, string>) => t.app.inject({ method: "POST", url: "/services/collector/event", headers: { "content-type": "application/json", ...headers }, payload: body });
    const ok = JSON.stringify({ event: { eventid: "cowrie.session.connect", src_ip: "192.0.2.70", session: "s1", timestamp: "2026-11-20T08:00:00Z" } });
    expect((await hec(ok, {})).json()).toEqual({ text: "Token is required", code: 2 });
    expect((await hec(ok, { authorization: `Bearer ${key}` })).json()).toEqual({ text: "Invalid authorization", code: 3 });
    expect((await hec(ok, { authorization: "Splunk phk_unknown" })).json()).toEqual({ text: "Invalid token", code: 4 });
    const auth = { authorization: `Splunk ${key}` };
    expect([(await hec("", auth)).statusCode, (await hec("", auth)).json()]).toEqual([400, { text: "No data", code: 5 }]);
    expect((await hec(`${ok}{"host":"h"}`, auth)).json()).toEqual({ text: "Event field is required", code: 12, "invalid-event-number": 1 });
    expect((await hec(`{"event":""}${ok}`, auth)).json()).toEqual({ text: "Event field cannot be blank", code: 13, "invalid-event-number": 0 });
    const bad = await hec(`${JSON.stringify({ event: { eventid: "cowrie.session.connect", src_ip: "256.1.1.1" } })}${JSON.stringify({ event: { eventid: "cowrie.login.failed", src_ip: "192.0.2.71", username: "a", password: "b" } })}{"event": {`, auth);
    expect([bad.statusCode, bad.json()]).toEqual([400, { text: "Invalid data format", code: 6, "invalid-event-number": 0 }]);
    // The connect (first request), the failed login (the bad request's valid envelope); nothing else.
    expect((await t.db.query<{ source_ip: string }>("SELECT source_ip FROM honeypot_events WHERE sensor_id = $1 ORDER BY id", [id])).map((r) => r.source_ip)).toEqual(["192.0.2.70", "192.0.2.71"]);
  });

  it("takes OpenCanary's webhook as JSON or as a form, with the key in a header", async () => {
    const { id, key } = await register("canary-1", "opencanary");
    const line = (logtype: number, logdata: Json, src = "198.51.100.77") =>
      JSON.stringify({ dst_host: "10.0.0.5", dst_port: 21, local_time: "2026-11-20 08:58:00.000000", local_time_adjusted: "2026-11-20 08:58:00.000000", logdata, logtype, node_id: "opencanary-1", src_host: src, src_port: 51000, utc_time: "2026-11-20 08:58:00.000000" });
    const asJson = await post("/security/honeypot/ingest/opencanary", key, JSON.stringify({ message: line(2000, { USERNAME: "admin", PASSWORD: "s3cret-pw" }) }));
    expect(asJson.statusCode, asJson.body).toBe(200);
    expect(asJson.json().status).toBe("accepted");
    const asForm = await post("/security/honeypot/ingest/opencanary", key, new URLSearchParams({ message: line(5001, {}) }).toString(), "application/x-www-form-urlencoded");
    expect(asForm.statusCode, asForm.body).toBe(200);
    expect((await post("/security/honeypot/ingest/opencanary", key, JSON.stringify({ message: line(2000, { USERNAME: "admin", PASSWORD: "s3cret-pw" }) }))).json().status).toBe("duplicate");
    problem(await post("/security/honeypot/ingest/opencanary", key, JSON.stringify({ msg: "x" })), 400, "VALIDATION_FAILED");
    const notJson = problem(await post("/security/honeypot/ingest/opencanary", key, JSON.stringify({ message: "not json" })), 400, "EVENT_INVALID_FIELD");
    expect(notJson.errors[0].path).toBe("message");
    // A custom log format that prefixes the line, and an internal message without a source address.
    expect((await post("/security/honeypot/ingest/opencanary", key, JSON.stringify({ message: `opencanary-1 ${line(4000, {}, "198.51.100.78")}` }))).statusCode).toBe(200);
    expect((await post("/security/honeypot/ingest/opencanary", key, JSON.stringify({ message: line(1001, { msg: "Canary running" }, "") }))).statusCode).toBe(200);
    const events = (await call("GET", `/security/honeypot/events?sensor=${id}`, viewer.token)).json().items as Json[];
    expect(events.map((e) => [e.event_type, e.source_ip, e.payload.sensor_event])).toEqual([
      ["other", "0.0.0.0", "opencanary:1001"],
      ["connection", "198.51.100.78", "opencanary:4000"],
      ["scan", "198.51.100.77", "opencanary:5001"],
      ["auth_attempt", "198.51.100.77", "opencanary:2000"],
    ]);
    expect(JSON.stringify(events)).not.toContain("s3cret-pw");
  });

  it("lists with filters and a cursor, and marks events processed once (audited, idempotent)", async () => {
    const { id, key } = await register("triage-1", "custom");
    const batch = Array.from({ length: 7 }, (_, i) => ({ source_ip: i % 2 ? "203.0.113.200" : "203.0.113.201", event_type: i % 3 ? "scan" : "auth_attempt", event_id: `t${i}`, ...(i === 6 ? { detected_threat: "port_scan" } : {}) }));
    expect((await post("/security/honeypot/events/batch", key, JSON.stringify(batch))).json().accepted).toBe(7);
    const page = async (query: string) => (await call("GET", `/security/honeypot/events?sensor=${id}&${query}`, viewer.token)).json();
    const p1 = await page("limit=3");
    expect(p1.items).toHaveLength(3);
    const p2 = await page(`limit=3&cursor=${p1.next_cursor}`);
    const p3 = await page(`limit=3&cursor=${p2.next_cursor}`);
    expect(p3.next_cursor).toBeNull();
    const ids = [...p1.items, ...p2.items, ...p3.items].map((e: Json) => Number(e.id));
    expect(ids).toHaveLength(7);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect((await page("source_ip=203.0.113.200")).items).toHaveLength(3);
    expect((await page("event_type=auth_attempt")).items).toHaveLength(3);
    expect((await page("threat=port_scan")).items).toHaveLength(1);
    expect((await page("since=2026-11-20T00:00:00Z&until=2026-11-20T00:00:01Z")).items).toHaveLength(0);
    problem(await call("GET", "/security/honeypot/events?source_ip=nope", viewer.token), 400, "VALIDATION_FAILED");
    problem(await call("GET", "/security/honeypot/events?cursor=abc", viewer.token), 400, "VALIDATION_FAILED");
    problem(await call("GET", "/security/honeypot/events?event_type=bogus", viewer.token), 400, "VALIDATION_FAILED");

    const target = p1.items[0].id as string;
    problem(await call("POST", `/security/honeypot/events/${target}/processed`, viewer.token), 403, "FORBIDDEN");
    const marked = await call("POST", `/security/honeypot/events/${target}/processed`, analyst.token);
    expect(marked.statusCode, marked.body).toBe(200);
    expect(marked.json()).toMatchObject({ id: target, processed: true, processed_at: clock.now().toISOString() });
    expect(marked.json().processed_by).toMatch(/^analyst-/);
    clock.advance(1_000);
    const again = await call("POST", `/security/honeypot/events/${target}/processed`, analyst.token);
    expect(again.json().processed_at).toBe(marked.json().processed_at);
    expect(await auditActions("honeypot_event", target)).toEqual(["sensors.event.processed"]);
    expect((await page("unprocessed_only=true")).items.map((e: Json) => e.id)).not.toContain(target);
    expect((await page("unprocessed_only=true")).items).toHaveLength(6);
    problem(await call("POST", "/security/honeypot/events/99999999/processed", analyst.token), 404, "EVENT_NOT_FOUND");
    problem(await call("POST", "/security/honeypot/events/abc/processed", analyst.token), 404, "EVENT_NOT_FOUND");
    problem(await call("POST", "/security/honeypot/events/99999999999999999999/processed", analyst.token), 404, "EVENT_NOT_FOUND");
    problem(await call("GET", `/security/honeypot/events?cursor=${Buffer.from("99999999999999999999").toString("base64url")}`, viewer.token), 400, "VALIDATION_FAILED");
  });

  it("gives other domains what they need: onIngested after commit, ingestNormalized, ensureSensor, eventsSince", async () => {
    const seen: string[] = [];
    t.app.services.sensors.onIngested((events) => seen.push(...events.map((e) => `${e.sensorName}:${e.sourceIp}:${e.eventType}`)));
    const { key } = await register("listener-1", "custom");
    await post("/security/honeypot/events/batch", key, JSON.stringify([{ source_ip: "192.0.2.90", event_type: "scan" }, { source_ip: "192.0.2.90", event_type: "scan" }, { source_ip: "x", event_type: "scan" }]));
    expect(seen).toEqual(["listener-1:192.0.2.90:scan"]);
    const { systemActor } = await import("../src/domains/identity/principal.ts");
    const actor = systemActor("crowdsec");
    const a = await t.app.services.sensors.ensureSensor(actor, { name: "crowdsec:watcher-1", honeypot_type: "crowdsec" });
    const b = await t.app.services.sensors.ensureSensor(actor, { name: "CROWDSEC:watcher-1", honeypot_type: "crowdsec" });
    expect(b).toEqual(a);
    const normalized = {
      eventId: "alert-1",
      sourceIp: "192.0.2.91",
      eventType: "scan" as const,
      detectedThreat: "crowdsecurity/ssh-bf",
      occurredAt: null,
      payload: { scenario: "crowdsecurity/ssh-bf" },
      secrets: {},
      raw: "{}",
      rawOriginal: "{}",
    };
    const results = await t.app.services.sensors.ingestNormalized(actor, a.id, [
      normalized,
      normalized,
      { ...normalized, eventId: "alert-2", sourceIp: "::FFFF:192.0.2.1" },
      { ...normalized, eventId: "alert-3", eventType: "bogus" as "scan" },
    ]);
    expect(results.map((r) => [r.status, r.code])).toEqual([
      ["accepted", undefined],
      ["duplicate", undefined],
      ["rejected", "EVENT_INVALID_SOURCE_IP"],
      ["rejected", "EVENT_INVALID_TYPE"],
    ]);
    expect(seen).toContain("crowdsec:watcher-1:192.0.2.91:scan");
    const since = await t.app.services.sensors.eventsSince(new Date(clock.now().getTime() - 1_000), null, 10_000);
    expect(since.map((e) => e.sourceIp)).toEqual(expect.arrayContaining(["192.0.2.90", "192.0.2.91"]));
    const after = await t.app.services.sensors.eventsSince(new Date(0), since[since.length - 2]!.id, 10);
    expect(after.map((e) => e.id)).toEqual([since[since.length - 1]!.id]);
  });

  it("deactivates a sensor through the action workflow, and block_entity's dry-run shows what the sensors saw", async () => {
    await installRules(t, analyst.token, approver.token);
    const { id, key } = await register("action-target", "cowrie");
    await post("/security/honeypot/events/batch", key, JSON.stringify([{ source_ip: "45.95.169.99", event_type: "exploitation" }, { source_ip: "45.95.169.99", event_type: "scan" }]));
    const block = await call("POST", "/security/actions/", analyst.token, { action_type: "block_entity", payload: { entity_type: "ip", value: "45.95.169.99" } });
    expect(block.statusCode, block.body).toBe(201);
    expect(block.json().dry_run.report.recent_events).toEqual({ available: true, source_ip: "45.95.169.99", events_1h: 2, exploitation_1h: 1, hits_24h: 2, sensors: ["action-target"] });
    const req = await call("POST", "/security/actions/", analyst.token, { action_type: "deactivate_honeypot", payload: { sensor_id: id }, reason: "compromised" });
    expect(req.statusCode, req.body).toBe(201);
    expect(req.json().dry_run.report).toMatchObject({ sensor: { id, name: "action-target", active: true }, keys_refused: [key.slice(0, 12)], would_fail: null });
    expect((await call("POST", `/security/actions/${req.json().id}/approve`, approver.token, { note: "yes" })).json().status).toBe("approved");
    const executed = await call("POST", `/security/actions/${req.json().id}/execute`, executor.token);
    expect(executed.statusCode, executed.body).toBe(200);
    expect(executed.json()).toMatchObject({ status: "executed", result: { sensor: { id, active: false } } });
    problem(await post("/security/honeypot/events", key, JSON.stringify({ source_ip: "45.95.169.99", event_type: "scan" })), 403, "SENSOR_DEACTIVATED");
    expect(await auditActions("sensor", id)).toEqual(["sensors.instance.created", "sensors.instance.deactivated"]);
  });

  it("stores captured credentials encrypted: decrypted for telemetry:secrets, masked for everyone else", async () => {
    const { id, key } = await register("secrets-1", "cowrie");
    const envelope = JSON.stringify({ host: "h", event: { eventid: "cowrie.login.failed", src_ip: "198.51.100.99", username: "root", password: "Tr0ub4dor&3", session: "abc", timestamp: "2026-11-20T08:00:00Z" } });
    expect((await post("/services/collector/event", key, envelope, "application/json", "authorization")).json()).toEqual({ text: "Success", code: 0 });
    const [row] = await t.db.query<{ secrets: unknown; secrets_key_id: string; raw: string; payload: unknown }>("SELECT secrets, secrets_key_id, raw, payload FROM honeypot_events WHERE sensor_id = $1", [id]);
    expect(row!.secrets_key_id).toBe("test");
    expect(Buffer.from(row!.secrets as Uint8Array).toString("latin1")).not.toContain("Tr0ub4dor");
    expect(row!.raw).not.toContain("Tr0ub4dor");
    expect(JSON.stringify(row!.payload)).not.toContain("Tr0ub4dor");
    const asViewer = (await call("GET", `/security/honeypot/events?sensor=${id}`, analyst.token)).json().items[0];
    expect(asViewer.credentials).toEqual({ password: "********" });
    expect(JSON.stringify(asViewer)).not.toContain("Tr0ub4dor");
    const asAdmin = (await call("GET", `/security/honeypot/events?sensor=${id}`, t.adminToken)).json().items[0];
    expect(asAdmin.credentials).toEqual({ password: "Tr0ub4dor&3" });
    expect(asAdmin.payload).toMatchObject({ username: "root", outcome: "failed" });
    // The service's listeners never see credentials either.
    const replay = await t.app.services.sensors.eventsSince(new Date(0), String(Number(asAdmin.id) - 1), 1);
    expect(JSON.stringify(replay)).not.toContain("Tr0ub4dor");
  });

  it("never leaks a sensor key into the logs", () => {
    const joined = t.logs.join("\n");
    expect(joined).not.toMatch(/phk_[A-Za-z0-9_-]{43}/);
  });
});

describe.each(DB_KINDS)("sensor credential modes on %s", (kind) => {
  for (const mode of ["plain", "redacted"] as const) {
    it(`${mode}: credentials are ${mode === "plain" ? "kept, shown only to telemetry:secrets" : "never stored"}`, async () => {
      const t = await createTestApp(kind, { config: { "sensors.credentials": mode } });
      try {
        const analyst = await createKeyForRole(t.db, "analyst");
        const created = await t.app.inject({ method: "POST", url: "/security/honeypot/instances", headers: t.auth(), payload: { name: "m", honeypot_type: "cowrie" } });
        const key = created.json().api_key as string;
        rememberSecret(key);
        const line = JSON.stringify({ eventid: "cowrie.login.success", src_ip: "198.51.100.98", username: "admin", password: "Corr3ct-Horse", session: "s", timestamp: "2026-11-20T08:00:00Z" });
        const res = await t.app.inject({ method: "POST", url: "/services/collector/event", headers: { authorization: `Splunk ${key}` }, payload: `{"event":${line}}` });
        expect(res.json()).toEqual({ text: "Success", code: 0 });
        const [row] = await t.db.query<{ secrets: unknown; raw: string; payload: unknown }>("SELECT secrets, raw, payload FROM honeypot_events");
        expect(row!.secrets).toBeNull();
        const asAnalyst = (await t.app.inject({ method: "GET", url: "/security/honeypot/events", headers: t.auth(analyst.token) })).json().items[0];
        const asAdmin = (await t.app.inject({ method: "GET", url: "/security/honeypot/events", headers: t.auth() })).json().items[0];
        expect(JSON.stringify(asAnalyst)).not.toContain("Corr3ct-Horse");
        if (mode === "plain") {
          expect(row!.raw).toBe(`{"event":${line}}`);
          expect(asAnalyst.credentials).toEqual({ password: "********" });
          expect(asAdmin.credentials).toEqual({ password: "Corr3ct-Horse" });
          expect(asAdmin.raw).toContain("Corr3ct-Horse");
        } else {
          expect(JSON.stringify(row)).not.toContain("Corr3ct-Horse");
          expect(asAdmin.credentials).toBeNull();
        }
      } finally {
        await t.close();
      }
    });
  }
});

describe.each(DB_KINDS)("an agent's sensor is no honeypot evidence on %s", (kind) => {
  let t: TestApp;
  let analyst: Key;
  beforeAll(async () => {
    t = await createTestApp(kind);
    analyst = await createKeyForRole(t.db, "analyst");
  });
  afterAll(async () => t?.close());

  const call = (method: "GET" | "POST", url: string, token: string, payload?: unknown) =>
    t.app.inject({ method, url, headers: t.auth(token), ...(payload !== undefined ? { payload: payload as object } : {}) });
  const alert = (eventId: string, sourceIp: string) => ({
    eventId,
    sourceIp,
    eventType: "exploitation" as const,
    detectedThreat: "crowdsecurity/ssh-bf",
    occurredAt: null,
    payload: { scenario: "crowdsecurity/ssh-bf" },
    secrets: {},
    raw: "{}",
    rawOriginal: "{}",
  });

  it("counts only events of keyed honeypot sensors in sourceActivity, and the elevated-mode rule allows only on those", async () => {
    const crowdsec = systemActor("crowdsec");
    const sensors = t.app.services.sensors;
    // What a CrowdSec watcher's alerts become: a keyless sensor made by ensureSensor.
    const agent = await sensors.ensureSensor(crowdsec, { name: "crowdsec:partner-watcher", honeypot_type: "crowdsec" });
    const claimed = "185.220.101.7"; // named only by the agent
    const seen = "185.220.101.8"; // seen by a real honeypot
    const both = "185.220.101.9"; // both
    const stored = await sensors.ingestNormalized(crowdsec, agent.id, [alert("a-1", claimed), alert("a-2", claimed), alert("a-3", both)]);
    expect(stored.map((r) => r.status)).toEqual(["accepted", "accepted", "accepted"]);
    const created = await call("POST", "/security/honeypot/instances", t.adminToken, { name: "real-trap", honeypot_type: "cowrie" });
    expect(created.statusCode, created.body).toBe(201);
    const key = created.json().api_key as string;
    rememberSecret(key);
    const sent = await t.app.inject({
      method: "POST",
      url: "/security/honeypot/events/batch",
      headers: { "x-honeypot-key": key, "content-type": "application/json" },
      payload: JSON.stringify([{ source_ip: seen, event_type: "scan" }, { source_ip: both, event_type: "exploitation" }]),
    });
    expect(sent.json()).toMatchObject({ accepted: 2, rejected: 0 });
    await t.app.services.sentinel.settle();

    const now = new Date();
    expect(await sensors.sourceActivity(claimed, now)).toEqual({ events_1h: 0, exploitation_1h: 0, hits_24h: 0, sensors: [] });
    expect(await sensors.sourceActivity(seen, now)).toEqual({ events_1h: 1, exploitation_1h: 0, hits_24h: 1, sensors: ["real-trap"] });
    expect(await sensors.sourceActivity(both, now)).toEqual({ events_1h: 1, exploitation_1h: 1, hits_24h: 1, sensors: ["real-trap"] });
    // The agent's events are stored and listed all the same: they are data, just not evidence.
    expect((await call("GET", `/security/honeypot/events?sensor=${agent.id}`, analyst.token)).json().items).toHaveLength(3);

    // An agent's sensor never gets a key, and an agent cannot write into a honeypot's sensor.
    const rotate = await call("POST", `/security/honeypot/instances/${agent.id}/rotate-key`, t.adminToken, {});
    expect(rotate.statusCode, rotate.body).toBe(409);
    expect(rotate.json().code).toBe("SENSOR_IS_AGENT");
    await expect(sensors.ingestNormalized(crowdsec, created.json().id, [alert("a-4", claimed)])).rejects.toMatchObject({ status: 403, code: "FORBIDDEN" });
    expect(await sensors.sourceActivity(claimed, now)).toMatchObject({ hits_24h: 0 });

    // Through the policy, in elevated mode: the default rule allows a block on honeypot evidence only.
    expect((await call("POST", "/security/policy/", t.adminToken, { default_mode: "elevated" })).statusCode).toBe(200);
    const block = async (ip: string) => {
      const res = await call("POST", "/security/actions/", analyst.token, { action_type: "block_entity", payload: { entity_type: "ip", value: ip }, reason: "named by an alert" });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as Json;
    };
    const onClaim = await block(claimed);
    expect(onClaim.decision.input).toMatchObject({ policy: { mode: "elevated" }, evidence: { honeypot_hits_24h: 0, sensors: [] } });
    expect(onClaim.decision.outcome).not.toBe("ALLOW");
    expect(onClaim.decision.matched.map((m: Json) => m.name)).not.toContain("auto-block-honeypot-attackers-when-elevated");
    expect(onClaim.status).not.toMatch(/^(approved|executed)$/);
    expect((await call("GET", `/security/policy/check?ip=${claimed}`, analyst.token)).json().blocked).toBe(false);
    // The control: the same request for an address a honeypot saw is allowed by that rule.
    const onEvidence = await block(seen);
    expect(onEvidence.decision).toMatchObject({ outcome: "ALLOW", deciding_rule: { name: "auto-block-honeypot-attackers-when-elevated" } });
  });
});

describe.each(DB_KINDS)("the sensor key cache on %s", (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(kind);
  });
  afterAll(async () => t?.close());

  /**
   * A service over the real repository whose key lookup can be held after its read: the read has
   * happened (the row as it was), the answer is not yet back. Deterministic, no sleeps.
   */
  const pausable = async () => {
    const { sensorsService } = await import("../src/domains/sensors/sensors.service.ts");
    const { sensorsRepo } = await import("../src/domains/sensors/sensors.repo.ts");
    const real = sensorsRepo(t.db.orm);
    let hold: { read: () => void; release: Promise<void> } | undefined;
    const repo = {
      ...real,
      findKey: async (hash: Buffer) => {
        const found = await real.findKey(hash);
        const h = hold;
        hold = undefined;
        if (h) {
          h.read();
          await h.release;
        }
        return found;
      },
    };
    const service = sensorsService({
      db: t.db,
      repo,
      audit: t.app.services.audit,
      clock: { now: () => new Date() },
      vault: t.app.services.credentialVault,
      settings: testConfig().sensors,
      changeFeed: { publish: async () => {} },
    });
    /** Holds the next lookup after its read; resolves `read` once it has read. */
    const holdNext = () => {
      let release!: () => void;
      let read!: () => void;
      const readDone = new Promise<void>((r) => (read = r));
      hold = { read, release: new Promise<void>((r) => (release = r)) };
      return { readDone, release };
    };
    return { service, holdNext };
  };

  const register = async (name: string) => {
    const res = await t.app.inject({ method: "POST", url: "/security/honeypot/instances", headers: t.auth(), payload: { name, honeypot_type: "custom" } });
    expect(res.statusCode, res.body).toBe(201);
    rememberSecret(res.json().api_key);
    return res.json() as { id: string; api_key: string };
  };

  const admin = systemActor("admin-test");

  it("a lookup that read the key before a deactivation committed does not cache its stale answer", async () => {
    const { service, holdNext } = await pausable();
    const s = await register("race-deactivate");
    const gate = holdNext();
    const lookup = service.authenticateKey(s.api_key);
    await gate.readDone;
    await service.deactivate(admin, s.id, "compromised");
    gate.release();
    // Began before the change: it may answer as of its read.
    expect((await lookup).machine).toEqual({ type: "sensor", id: s.id });
    await expect(service.authenticateKey(s.api_key)).rejects.toMatchObject({ code: "SENSOR_DEACTIVATED" });
  });

  it("likewise for a rotation without grace, and for a clear that came from another node (NOTIFY)", async () => {
    const { service, holdNext } = await pausable();
    const s = await register("race-rotate");
    let gate = holdNext();
    let lookup = service.authenticateKey(s.api_key);
    await gate.readDone;
    const rotated = await service.rotateKey(admin, s.id, 0);
    rememberSecret(rotated.api_key);
    gate.release();
    await lookup;
    await expect(service.authenticateKey(s.api_key)).rejects.toMatchObject({ code: "SENSOR_KEY_EXPIRED" });

    // Another node deactivates (here: the app's own service, which shares nothing with this one);
    // this node learns of it only through the clear its NOTIFY listener makes.
    gate = holdNext();
    lookup = service.authenticateKey(rotated.api_key);
    await gate.readDone;
    await t.app.services.sensors.deactivate(admin, s.id, "elsewhere");
    service.invalidateCache();
    gate.release();
    await lookup;
    await expect(service.authenticateKey(rotated.api_key)).rejects.toMatchObject({ code: "SENSOR_DEACTIVATED" });
  });

  it("without a clear in between, the answer is cached as before", async () => {
    const { service } = await pausable();
    const s = await register("cached");
    await service.authenticateKey(s.api_key);
    // Deactivated elsewhere with no clear here: the cached answer stands until the TTL (what NOTIFY is for).
    await t.app.services.sensors.deactivate(admin, s.id, "elsewhere");
    expect((await service.authenticateKey(s.api_key)).machine).toEqual({ type: "sensor", id: s.id });
    service.invalidateCache();
    await expect(service.authenticateKey(s.api_key)).rejects.toMatchObject({ code: "SENSOR_DEACTIVATED" });
  });
});
