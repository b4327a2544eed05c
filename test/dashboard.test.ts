// The security dashboard (PACK TT): exactly the seed's structure (plus blocklist.cidrs), readable by
// every role and nobody else, and its numbers follow the state: mode, blocks by type, open incidents
// by severity, pending requests by type, honeypot instances and the last 24 hours of events.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { rememberSecret } from "./helpers/secret-scan.ts";
import { manualClock } from "../src/lib/time.ts";

type Json = Record<string, any>;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe.each(DB_KINDS)("security dashboard on %s", (kind) => {
  // Expiry is moved by this clock, never waited for.
  const clock = manualClock("2026-11-01T09:00:00.000Z");
  let t: TestApp;
  let viewer: { token: string }, analyst: { token: string };

  beforeAll(async () => {
    t = await createTestApp(kind, { clock });
    viewer = await createKeyForRole(t.db, "viewer");
    analyst = await createKeyForRole(t.db, "analyst");
  });
  afterAll(async () => t?.close());

  const dashboard = async (token = viewer.token) => {
    const res = await t.app.inject({ method: "GET", url: "/security/dashboard", headers: t.auth(token) });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Json;
  };
  const post = async (url: string, payload: object, token = t.adminToken, status = 201) => {
    const res = await t.app.inject({ method: "POST", url, headers: t.auth(token), payload });
    expect(res.statusCode, res.body).toBe(status);
    return res.json() as Json;
  };

  it("has exactly the seed's keys, with the right types, on an empty system", async () => {
    const d = await dashboard();
    expect(Object.keys(d).sort()).toEqual(["action_requests", "blocklist", "honeypot", "incidents", "last_update", "security_mode", "timestamp"]);
    expect(Object.keys(d.security_mode).sort()).toEqual(["mode", "updated_at"]);
    expect(Object.keys(d.incidents).sort()).toEqual(["critical", "high", "low", "medium", "total_open"]);
    expect(Object.keys(d.blocklist).sort()).toEqual(["api_keys", "cidrs", "ips", "total_blocked", "users"]);
    expect(Object.keys(d.honeypot).sort()).toEqual(["active_instances", "recent_events", "threats_detected", "total_instances"]);
    expect(Object.keys(d.action_requests).sort()).toEqual(["pending_by_type", "total_pending"]);
    expect(d.timestamp).toMatch(ISO);
    expect(d.last_update).toMatch(ISO);
    expect(d.security_mode).toEqual({ mode: "normal", updated_at: expect.stringMatching(ISO) });
    expect(d.incidents).toEqual({ total_open: 0, critical: 0, high: 0, medium: 0, low: 0 });
    expect(d.blocklist).toEqual({ total_blocked: 0, ips: 0, users: 0, api_keys: 0, cidrs: 0 });
    expect(d.honeypot).toEqual({ total_instances: 0, active_instances: 0, recent_events: 0, threats_detected: 0 });
    expect(d.action_requests).toEqual({ total_pending: 0, pending_by_type: {} });
  });

  it("every role reads it; without a credential it is 401", async () => {
    for (const role of ["analyst", "approver", "executor", "admin"] as const) await dashboard((await createKeyForRole(t.db, role)).token);
    const anonymous = await t.app.inject({ method: "GET", url: "/security/dashboard" });
    expect(anonymous.statusCode).toBe(401);
  });

  it("follows the state: mode, blocks by type, incidents by severity, pending requests by type, sensors and recent events", async () => {
    const policy = await post("/security/policy/", { default_mode: "elevated" }, t.adminToken, 200);
    await post("/security/policy/blocks", { entity_type: "ip", value: "5.188.86.172", reason: "x" });
    await post("/security/policy/blocks", { entity_type: "ip", value: "5.188.86.173", reason: "x" });
    await post("/security/policy/blocks", { entity_type: "cidr", value: "91.240.118.0/24", reason: "x" });
    await post("/security/policy/blocks", { entity_type: "user", value: "mallory", reason: "x" });
    await post("/security/policy/blocks", { entity_type: "api_key", value: "pc_abcd1234", reason: "x" });
    // An expired block does not count.
    const expiring = await post("/security/policy/blocks", { entity_type: "ip", value: "5.188.86.174", reason: "x", expires_at: new Date(clock.now().getTime() + 60_000).toISOString() });
    await post("/security/actions/", { action_type: "unblock_entity", payload: { entity_type: "ip", value: "5.188.86.172" }, reason: "test" }, analyst.token);
    await post("/security/actions/", { action_type: "set_mode", payload: { mode: "lockdown" }, reason: "test" }, analyst.token);
    const sentinel = t.app.services.sentinel;
    await sentinel.proposeBlock({ sourceIp: "45.155.205.1", threat: "brute_force", severity: "high", origin: "test", reason: "t", evidence: {} });
    await sentinel.proposeBlock({ sourceIp: "45.155.205.2", threat: "malware_download", severity: "critical", origin: "test", reason: "t", evidence: {} });
    const resolved = await sentinel.proposeBlock({ sourceIp: "45.155.205.3", threat: "port_scan", severity: "medium", origin: "test", reason: "t", evidence: {} });
    await post(`/security/incidents/${resolved.incidentId}/resolve`, { note: "done" }, analyst.token, 200);
    // Two sensors, one deactivated; three events, one with a threat.
    const sensor = await post("/security/honeypot/instances", { name: "web-trap", honeypot_type: "opencanary" });
    rememberSecret(sensor.api_key);
    const other = await post("/security/honeypot/instances", { name: "old-trap", honeypot_type: "cowrie" });
    rememberSecret(other.api_key);
    await post(`/security/honeypot/instances/${other.id}/deactivate`, { reason: "retired" }, t.adminToken, 200);
    for (const body of [
      { source_ip: "45.155.205.9", event_type: "auth_attempt", payload: { username: "admin" } },
      { source_ip: "45.155.205.9", event_type: "scan", payload: { dst_port: 22 } },
      { source_ip: "45.155.205.9", event_type: "auth_attempt", payload: { username: "root" }, detected_threat: "credential_stuffing" },
    ]) {
      const res = await t.app.inject({ method: "POST", url: "/security/honeypot/events", headers: { "x-honeypot-key": sensor.api_key, "content-type": "application/json" }, payload: body });
      expect(res.statusCode, res.body).toBe(201);
    }
    await sentinel.settle();
    expect((await dashboard()).blocklist.ips).toBe(3);
    clock.set(expiring.expires_at);

    const d = await dashboard();
    expect(d.security_mode).toEqual({ mode: "elevated", updated_at: policy.updated_at });
    expect(d.blocklist).toEqual({ total_blocked: 5, ips: 2, users: 1, api_keys: 1, cidrs: 1 });
    // 45.155.205.1 brute force (high), .2 malware (critical), .9 credential stuffing named by the sensor (medium).
    expect(d.incidents).toEqual({ total_open: 3, critical: 1, high: 1, medium: 1, low: 0 });
    // The sentinel's three block requests wait for approval: no honeypot evidence names those addresses.
    expect(d.action_requests.pending_by_type).toEqual({ unblock_entity: 1, set_mode: 1, block_entity: 3 });
    expect(d.action_requests.total_pending).toBe(5);
    expect(d.honeypot).toEqual({ total_instances: 2, active_instances: 1, recent_events: 3, threats_detected: 1 });
    expect(Date.parse(d.last_update)).toBeGreaterThanOrEqual(Date.parse(policy.updated_at));
    expect(Date.parse(d.last_update)).toBeLessThanOrEqual(Date.parse(d.timestamp));
  });
});
