// Auto-response end to end on a real database: real Cowrie lines of one brute-forcing source,
// re-addressed and re-timed, sent through the HEC endpoint as stock Cowrie sends them; the sentinel's
// request appears with its evidence, the policy engine's decision applies (normal mode: an approver;
// elevated: approved, executed, enforced), the dashboard reflects it, nothing is raised twice, a
// private source is never blocked, many sources ask for elevated mode (and lockdown needs two
// approvers), and a restart replays the window.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app/build.ts";
import { createKeyForRole, createTestApp, DB_KINDS, testConfig, type TestApp } from "./helpers/harness.ts";
import { cowrieLinesOf, failedLogins, hecBody } from "./helpers/cowrie-replay.ts";
import { rememberSecret } from "./helpers/secret-scan.ts";

type Json = Record<string, any>;
/** A source of the fixtures that only fails logins (121 sessions, one failed login each). */
const FIXTURE_SOURCE = "185.222.209.151";
const LINES = cowrieLinesOf(FIXTURE_SOURCE);
/** The first `sessions` sessions of it (connect, version, failed login, closed). */
const sessions = (n: number) => LINES.slice(0, n * 4);

const setup = (kind: "pglite" | "postgres", config: Record<string, unknown> = {}) => {
  const ctx = {} as { t: TestApp; sensorKey: string; sensorName: string; viewer: { token: string }; approver: { token: string }; approver2: { token: string } };
  beforeAll(async () => {
    ctx.t = await createTestApp(kind, { config });
    ctx.viewer = await createKeyForRole(ctx.t.db, "viewer");
    ctx.approver = await createKeyForRole(ctx.t.db, "approver");
    ctx.approver2 = await createKeyForRole(ctx.t.db, "approver");
    ctx.sensorName = "ssh-trap-e2e";
    const res = await ctx.t.app.inject({ method: "POST", url: "/security/honeypot/instances", headers: ctx.t.auth(), payload: { name: ctx.sensorName, honeypot_type: "cowrie" } });
    expect(res.statusCode, res.body).toBe(201);
    ctx.sensorKey = res.json().api_key;
    rememberSecret(ctx.sensorKey);
  });
  afterAll(async () => ctx.t?.close());
  return ctx;
};

const helpers = (ctx: ReturnType<typeof setup>) => {
  const call = (method: "GET" | "POST", url: string, token: string, payload?: unknown) =>
    ctx.t.app.inject({ method, url, headers: ctx.t.auth(token), ...(payload !== undefined ? { payload: payload as object } : {}) });
  const ok = async (method: "GET" | "POST", url: string, token = ctx.viewer.token, payload?: unknown) => {
    const res = await call(method, url, token, payload);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Json;
  };
  /** Sends lines as stock Cowrie does (HEC, Authorization: Splunk <key>) and waits for the sentinel. */
  const attack = async (lines: string[], as: string) => {
    const res = await ctx.t.app.inject({
      method: "POST",
      url: "/services/collector/event",
      headers: { authorization: `Splunk ${ctx.sensorKey}`, "content-type": "application/json" },
      payload: hecBody(lines, FIXTURE_SOURCE, as),
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ text: "Success", code: 0 });
    await ctx.t.app.services.sentinel.settle();
  };
  const blockRequestsFor = async (ip: string) =>
    ((await ok("GET", "/security/actions/?type=block_entity&limit=1000")).items as Json[]).filter((r) => r.payload.value === ip);
  const incidentsOf = async (ip: string) => (await ok("GET", `/security/incidents?source_ip=${ip}`)).items as Json[];
  const eventIdsOf = async (ip: string) => ((await ok("GET", `/security/honeypot/events?source_ip=${ip}&limit=1000`)).items as Json[]).map((e) => String(e.id));
  const dashboard = () => ok("GET", "/security/dashboard");
  const setPolicy = (body: Json) => ok("POST", "/security/policy/", ctx.t.adminToken, body);
  return { call, ok, attack, blockRequestsFor, incidentsOf, eventIdsOf, dashboard, setPolicy };
};

describe.each(DB_KINDS)("auto-response end to end on %s", (kind) => {
  const ctx = setup(kind, { "actions.autoExecuteTypes": ["block_entity"] });
  const h = helpers(ctx);

  it("normal mode: a brute force becomes an incident and one block request with its evidence, waiting for an approver; the dashboard shows it", async () => {
    const before = await h.dashboard();
    expect(before.incidents.total_open).toBe(0);
    // Four failed logins: below max_failed_auth (5), nothing happens.
    await h.attack(sessions(4), "91.241.19.84");
    expect(await h.incidentsOf("91.241.19.84")).toEqual([]);
    expect(await h.blockRequestsFor("91.241.19.84")).toEqual([]);
    // Three more (sessions 5-7): 7 failed logins in the window.
    await h.attack(sessions(7).slice(16), "91.241.19.84");
    const [incident] = await h.incidentsOf("91.241.19.84");
    expect(incident).toMatchObject({ threat: "brute_force", severity: "high", status: "open" });
    const stored = await h.eventIdsOf("91.241.19.84");
    expect(stored).toHaveLength(28);
    expect(incident!.evidence.counts).toMatchObject({ failed_auth: failedLogins(sessions(7)), events: 28 });
    expect(incident!.evidence.sensors).toEqual([ctx.sensorName]);
    // The event ids in the evidence are the stored events that counted (logins, not connects).
    expect(incident!.evidence.event_ids.length).toBe(7);
    for (const id of incident!.evidence.event_ids) expect(stored).toContain(id);

    const requests = await h.blockRequestsFor("91.241.19.84");
    expect(requests).toHaveLength(1);
    const request = await h.ok("GET", `/security/actions/${requests[0]!.id}`);
    expect(request).toMatchObject({
      status: "pending",
      requested_by: "system:sentinel",
      payload: { entity_type: "ip", value: "91.241.19.84", duration_seconds: 86_400 },
      evidence: { origin: "sentinel", incident_id: incident!.id, threat: "brute_force", counts: { failed_auth: 7 } },
      decision: { outcome: "REQUIRE_APPROVAL", default_applied: true },
    });
    expect(request.evidence.event_ids).toEqual(incident!.evidence.event_ids);
    // The engine saw the telemetry of the address.
    expect(request.decision.input).toMatchObject({
      policy: { mode: "normal" },
      evidence: { honeypot_hits_24h: 28, sensors: [ctx.sensorName] },
      source: { events_1h: 28, exploitation_seen_1h: false },
    });
    expect(incident!.action_request_id).toBe(request.id);
    expect((await h.ok("GET", "/security/policy/check?ip=91.241.19.84")).blocked).toBe(false);

    const after = await h.dashboard();
    expect(after.incidents).toMatchObject({ total_open: 1, high: 1 });
    expect(after.action_requests).toEqual({ total_pending: 1, pending_by_type: { block_entity: 1 } });
    expect(after.honeypot).toMatchObject({ total_instances: 1, active_instances: 1, recent_events: 28 });
    expect(after.blocklist.total_blocked).toBe(0);
  });

  it("no duplicates: the attack going on (and a second detection of the same source) raises nothing more", async () => {
    await h.attack(sessions(20).slice(28), "91.241.19.84");
    expect(await h.blockRequestsFor("91.241.19.84")).toHaveLength(1);
    const [incident] = await h.incidentsOf("91.241.19.84");
    expect(incident!.evidence.counts.failed_auth).toBe(20);
    expect((await h.dashboard()).action_requests.total_pending).toBe(1);
  });

  it("an approver approves the pending request; the block is enforced at once", async () => {
    const [request] = await h.blockRequestsFor("91.241.19.84");
    expect((await h.call("POST", `/security/actions/${request!.id}/approve`, ctx.approver.token, { note: "seen in the SSH logs" })).statusCode).toBe(200);
    expect((await h.call("POST", `/security/actions/${request!.id}/execute`, ctx.t.adminToken)).statusCode).toBe(200);
    expect((await h.ok("GET", "/security/policy/check?ip=91.241.19.84")).blocked).toBe(true);
    const d = await h.dashboard();
    expect(d.blocklist).toMatchObject({ total_blocked: 1, ips: 1 });
    expect(d.action_requests.total_pending).toBe(0);
  });

  it("elevated mode: the policy allows the block at once, it is executed and enforced", async () => {
    await h.setPolicy({ default_mode: "elevated" });
    await h.attack(sessions(6), "45.155.205.233");
    const [request] = await h.blockRequestsFor("45.155.205.233");
    expect(request).toMatchObject({
      status: "executed",
      requested_by: "system:sentinel",
      approved_by: "policy:auto-block-honeypot-attackers-when-elevated",
      decision: { outcome: "ALLOW", deciding_rule: { name: "auto-block-honeypot-attackers-when-elevated" } },
    });
    expect((await h.ok("GET", "/security/policy/check?ip=45.155.205.233")).blocked).toBe(true);
    const [incident] = await h.incidentsOf("45.155.205.233");
    expect(incident!.evidence.response).toMatchObject({ action_request_id: request!.id, status: "executed", outcome: "ALLOW" });
    const d = await h.dashboard();
    expect(d.security_mode.mode).toBe("elevated");
    expect(d.blocklist).toMatchObject({ total_blocked: 2, ips: 2 });
    expect(d.incidents.total_open).toBe(2);
    // Still attacking after the block (the honeypot sees it): nothing more is asked.
    await h.attack(sessions(12).slice(24), "45.155.205.233");
    expect(await h.blockRequestsFor("45.155.205.233")).toHaveLength(1);
  });

  it("a private source is never blocked, even in elevated mode: the policy's DENY is on the incident", async () => {
    await h.attack(sessions(8), "10.44.0.9");
    const [incident] = await h.incidentsOf("10.44.0.9");
    expect(incident).toMatchObject({ threat: "brute_force", action_request_id: null });
    expect(incident!.evidence.response).toMatchObject({ status: "denied", outcome: "DENY" });
    expect(incident!.evidence.response.explanation).toContain("never-block-special-networks");
    expect(await h.blockRequestsFor("10.44.0.9")).toEqual([]);
    expect((await h.ok("GET", "/security/policy/check?ip=10.44.0.9")).blocked).toBe(false);
    // More of it: not asked again.
    await h.attack(sessions(16).slice(32), "10.44.0.9");
    expect(await h.blockRequestsFor("10.44.0.9")).toEqual([]);
  });
});

describe.each(DB_KINDS)("port scans from a native sender on %s", (kind) => {
  const ctx = setup(kind);
  const h = helpers(ctx);
  const batch = async (events: object[]) => {
    const res = await ctx.t.app.inject({
      method: "POST",
      url: "/security/honeypot/events/batch",
      headers: { "x-honeypot-key": ctx.sensorKey, "content-type": "application/json" },
      payload: JSON.stringify(events),
    });
    expect(res.statusCode, res.body).toBe(200);
    await ctx.t.app.services.sentinel.settle();
  };
  const scan = (ip: string, port: number) => ({ source_ip: ip, event_type: "scan", payload: { dst_port: port, protocol: "tcp" } });

  it("many ports opens a port_scan incident; max_scan_events scan events also raise a block request", async () => {
    // 9 scans over 9 ports: below max_scan_events (10) and detection.distinctPorts (10).
    await batch(Array.from({ length: 9 }, (_, i) => scan("193.32.162.7", 20 + i)));
    expect(await h.incidentsOf("193.32.162.7")).toEqual([]);
    await batch([scan("193.32.162.7", 8080)]);
    const [incident] = await h.incidentsOf("193.32.162.7");
    expect(incident).toMatchObject({ threat: "port_scan", severity: "medium", evidence: { counts: { scan_events: 10, distinct_ports: 10 } } });
    const [request] = await h.blockRequestsFor("193.32.162.7");
    expect(request).toMatchObject({ status: "pending", evidence: { threat: "port_scan", incident_id: incident!.id } });
    // Ten ports probed by connections only (no scan events): an incident, but no block request.
    await batch(Array.from({ length: 10 }, (_, i) => ({ source_ip: "193.32.162.8", event_type: "connection", payload: { dst_port: 1000 + i } })));
    const [quiet] = await h.incidentsOf("193.32.162.8");
    expect(quiet).toMatchObject({ threat: "port_scan", action_request_id: null });
    expect(await h.blockRequestsFor("193.32.162.8")).toEqual([]);
  });

  it("a spray of ports and usernames is remembered only up to what the classifier needs (threshold + 1), and still classified", async () => {
    await batch(Array.from({ length: 40 }, (_, i) => ({ source_ip: "193.32.162.9", event_type: "connection", payload: { dst_port: 3000 + i } })));
    await batch(Array.from({ length: 40 }, (_, i) => ({ source_ip: "193.32.162.10", event_type: "auth_attempt", payload: { username: `user-${i}-${"x".repeat(100)}` } })));
    const [ports] = await h.incidentsOf("193.32.162.9");
    expect(ports).toMatchObject({ threat: "port_scan", evidence: { counts: { distinct_ports: 11 } } });
    const [stuffing] = await h.incidentsOf("193.32.162.10");
    expect(stuffing).toMatchObject({ threat: "credential_stuffing", evidence: { counts: { failed_auth: 40, distinct_usernames: 11 } } });
    // The evidence names the last 50 events that counted, as stored.
    expect(stuffing!.evidence.event_ids).toHaveLength(40);
    expect(new Set(await h.eventIdsOf("193.32.162.10"))).toEqual(new Set(stuffing!.evidence.event_ids));
  });
});

describe.each(DB_KINDS)("escalation and restart on %s", (kind) => {
  const ctx = setup(kind, { "detection.elevateSources": 3, "detection.lockdownSources": 4 });
  const h = helpers(ctx);
  const modeRequests = async () => ((await h.ok("GET", "/security/actions/?type=set_mode&limit=100")).items as Json[]);

  it("auto_elevate: the third source tripping asks for elevated mode once; auto_lockdown at the fourth needs two approvers", async () => {
    await h.setPolicy({ auto_elevate: true, auto_lockdown: true });
    await h.attack(sessions(5), "77.83.36.10");
    await h.attack(sessions(5), "77.83.36.11");
    expect(await modeRequests()).toEqual([]);
    await h.attack(sessions(5), "77.83.36.12");
    const [elevate] = await modeRequests();
    expect(elevate).toMatchObject({ payload: { mode: "elevated" }, status: "pending", requested_by: "system:sentinel", decision: { outcome: "REQUIRE_APPROVAL" } });
    expect(new Set(elevate!.evidence.sources)).toEqual(new Set(["77.83.36.10", "77.83.36.11", "77.83.36.12"]));
    // More from the same sources: no second request.
    await h.attack(sessions(8).slice(20), "77.83.36.12");
    expect(await modeRequests()).toHaveLength(1);
    await h.attack(sessions(5), "77.83.36.13");
    const requests = await modeRequests();
    expect(requests).toHaveLength(2);
    const lockdown = requests.find((r) => r.payload.mode === "lockdown")!;
    expect(lockdown).toMatchObject({ status: "pending", approvals_required: 2, decision: { outcome: "REQUIRE_APPROVAL", deciding_rule: { name: "lockdown-needs-two-approvers" } } });
    // The mode does not change by itself.
    expect((await h.dashboard()).security_mode.mode).toBe("normal");
    expect((await h.dashboard()).action_requests.pending_by_type).toEqual({ block_entity: 4, set_mode: 2 });
  });

  it("a restart replays the window: an attack that was under the threshold before trips after", async () => {
    await h.attack(sessions(4), "31.184.198.71");
    expect(await h.incidentsOf("31.184.198.71")).toEqual([]);
    // A second app on the same database (a restarted node); the first one stops.
    await ctx.t.app.close();
    const app = await buildApp({ config: testConfig({ "detection.elevateSources": 3, "detection.lockdownSources": 4 }), db: ctx.t.db, logger: false });
    ctx.t.app = app;
    await app.services.sentinel.settle();
    await h.attack(sessions(5).slice(16), "31.184.198.71");
    const [incident] = await h.incidentsOf("31.184.198.71");
    expect(incident).toMatchObject({ threat: "brute_force", evidence: { counts: { failed_auth: 5, events: 20 } } });
    expect(await h.blockRequestsFor("31.184.198.71")).toHaveLength(1);
  });
});
