// CrowdSec watchers on a real database: registration pending until an admin validates it, login
// answers in CrowdSec's shapes (403 for unknown, wrong password, pending), the token is a watcher
// token only (never an access token, and the reverse), heartbeat, every alert fixture pushed and
// turned into stored alerts and block proposals through the action workflow, GET /v1/alerts,
// DELETE /v1/decisions as unblock requests, and the watcher's deletion ending its tokens.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { rememberSecret } from "./helpers/secret-scan.ts";
import { systemActor } from "../src/domains/identity/principal.ts";
import { CROWDSEC_FIXTURES, lapiValidator } from "./helpers/crowdsec.ts";

const validate = lapiValidator();
const FIXTURES = readdirSync(CROWDSEC_FIXTURES).filter((f) => /^alert_.*\.json$/.test(f)).sort();

describe.each(DB_KINDS)("CrowdSec watchers on %s", (kind) => {
  let t: TestApp;
  let token: string;
  const password = "agent-password-4f1c9e2b7a";
  beforeAll(async () => {
    // Auto-execution on: an ALLOW would become a block at once, so the elevated-mode test below can fail.
    t = await createTestApp(kind, { config: { "auth.argon2MemoryKiB": 8192, "actions.autoExecuteTypes": ["block_entity"] } });
    rememberSecret(password);
  });
  afterAll(async () => t?.close());

  const lapi = (method: "GET" | "POST" | "DELETE", url: string, payload?: unknown, bearer?: string) =>
    t.app.inject({
      method,
      url,
      headers: { "user-agent": "crowdsec/v1.4.6-debian", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
  const admin = (method: "GET" | "POST" | "DELETE", url: string) => t.app.inject({ method, url, headers: t.auth(), ...(method === "POST" ? { payload: {} } : {}) });

  it("registers a watcher that cannot log in until an admin validates it", async () => {
    const reg = await lapi("POST", "/v1/watchers", { machine_id: "agent-1", password });
    expect(reg.statusCode).toBe(201);
    const again = await lapi("POST", "/v1/watchers", { machine_id: "agent-1", password });
    expect(again.statusCode).toBe(403);
    expect(again.json()).toEqual({ message: "user 'agent-1': user already exist" });
    const pending = await lapi("POST", "/v1/watchers/login", { machine_id: "agent-1", password });
    expect(pending.statusCode).toBe(403);
    expect(pending.json()).toEqual({ code: 403, message: "machine agent-1 not validated" });
    expect(validate("ErrorResponse", pending.json())).toBe(true);
    const list = (await admin("GET", "/crowdsec/watchers")).json();
    expect(list).toEqual([expect.objectContaining({ machine_id: "agent-1", validated: false, registered_from: "127.0.0.1", agent_name: "crowdsec", agent_version: "v1.4.6-debian" })]);
    expect(JSON.stringify(list)).not.toContain(password);
    const ok = await admin("POST", "/crowdsec/watchers/agent-1/validate");
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ validated: true, validated_by: "admin" });
    expect((await admin("POST", "/crowdsec/watchers/agent-1/validate")).json().code).toBe("WATCHER_ALREADY_VALIDATED");
  });

  it("refuses a wrong password and an unknown machine with the same 403, and a malformed body with 400", async () => {
    for (const body of [{ machine_id: "agent-1", password: "wrong-password-123" }, { machine_id: "nobody", password }]) {
      const res = await lapi("POST", "/v1/watchers/login", body);
      expect(res.statusCode).toBe(403);
      expect(res.json()).toEqual({ code: 403, message: "incorrect Username or Password" });
    }
    const bad = await lapi("POST", "/v1/watchers/login", { machine_id: "agent-1" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain("password in body is required");
  });

  it("logs in for a one-hour token that works only as a watcher token", async () => {
    const res = await lapi("POST", "/v1/watchers/login", { machine_id: "agent-1", password, scenarios: ["crowdsecurity/ssh-bf"] });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(validate("WatcherAuthResponse", body), JSON.stringify(validate.errors)).toBe(true);
    expect(body.code).toBe(200);
    token = body.token;
    rememberSecret(token);
    const ttl = new Date(body.expire).getTime() - Date.now();
    expect(ttl).toBeGreaterThan(3_500_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect((await lapi("GET", "/v1/heartbeat", undefined, token)).statusCode).toBe(200);
    // not an access token ...
    expect((await t.app.inject({ method: "GET", url: "/auth/whoami", headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
    // ... and an API key or access token is not a watcher token
    const refused = await lapi("GET", "/v1/heartbeat", undefined, t.adminToken);
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toEqual({ code: 401, message: "token is invalid" });
    expect((await lapi("GET", "/v1/heartbeat")).json()).toEqual({ code: 401, message: "auth header is empty" });
    const watcher = (await admin("GET", "/crowdsec/watchers")).json()[0];
    expect(watcher.scenarios).toEqual(["crowdsecurity/ssh-bf"]);
    expect(watcher.last_heartbeat_at).not.toBeNull();
  });

  it("accepts every alert fixture with 201 and the new ids, and stores a block proposal for each public source", async () => {
    expect(FIXTURES.length).toBeGreaterThanOrEqual(4);
    const ids: string[] = [];
    for (const file of FIXTURES) {
      const alerts = JSON.parse(readFileSync(join(CROWDSEC_FIXTURES, file), "utf8")) as unknown[];
      const res = await lapi("POST", "/v1/alerts", alerts, token);
      expect(res.statusCode, `${file}: ${res.body}`).toBe(201);
      const body = res.json() as string[];
      expect(validate("AddAlertsResponse", body)).toBe(true);
      expect(body).toHaveLength(alerts.length);
      ids.push(...body);
    }
    expect(new Set(ids).size).toBe(ids.length);
    // Public sources (the ssh-bf fixtures' OVH addresses) get one pending block_entity request each;
    // the loopback source of the sample fixtures is refused by the guardrails, not blocked.
    const requests = (await admin("GET", "/security/actions/?type=block_entity")).json().items as { payload: { value: string }; status: string; reason: string; requested_by: string }[];
    const byValue = new Map<string, number>();
    for (const r of requests) byValue.set(r.payload.value, (byValue.get(r.payload.value) ?? 0) + 1);
    for (const ip of ["91.121.79.179", "91.121.79.178", "91.121.79.195"]) expect(byValue.get(ip), ip).toBe(1);
    expect(byValue.has("127.0.0.1")).toBe(false);
    const ssh = requests.find((r) => r.payload.value === "91.121.79.195")!;
    expect(ssh.reason).toMatch(/^crowdsec\/agent-1: crowdsecurity\/ssh-bf/);
    expect(ssh.status).toBe("pending");
    // Through the sentinel: an incident per (source, scenario) with the alert as evidence.
    const [stored] = await t.db.query<{ proposal: { via: string; incident_id: string; action_request_id: string } }>(
      "SELECT proposal FROM crowdsec_alerts WHERE source_value = '91.121.79.195' ORDER BY id LIMIT 1",
    );
    expect(stored!.proposal).toMatchObject({ via: "sentinel", incident_id: expect.any(String), action_request_id: expect.any(String) });
    const incident = await admin("GET", `/security/incidents/${stored!.proposal.incident_id}`);
    expect(incident.statusCode).toBe(200);
    expect(JSON.stringify(incident.json())).toContain("91.121.79.195");
    // No blocks were created by the agent's own decisions (only an approval makes one, below).
    expect((await admin("GET", "/security/policy/blocks?active=true")).json().items).toEqual([]);
  });

  it("stores each alert's events under one keyless sensor of type crowdsec for the watcher", async () => {
    const sensors = (await admin("GET", "/security/honeypot/instances?honeypot_type=crowdsec")).json().items as { id: string; name: string; honeypot_type: string }[];
    expect(sensors).toEqual([expect.objectContaining({ name: "crowdsec:agent-1", honeypot_type: "crowdsec" })]);
    const events = (await admin("GET", `/security/honeypot/events?sensor=${sensors[0]!.id}&limit=100`)).json().items as {
      source_ip: string;
      event_type: string;
      detected_threat: string;
      occurred_at: string;
      payload: { scenario: string; details: { meta: Record<string, string> } };
    }[];
    // Fixtures: sample 1 alert (1 event), minibulk 2 alerts (events per alert), ssh-bf 1 alert, stream 3 alerts (1 event each).
    let expected = 0;
    for (const file of FIXTURES) {
      for (const a of JSON.parse(readFileSync(join(CROWDSEC_FIXTURES, file), "utf8")) as Record<string, unknown>[]) {
        const evs = (a.events ?? a.Events) as unknown[] | undefined;
        expected += evs && evs.length ? evs.length : 1;
      }
    }
    expect(events).toHaveLength(expected);
    const ssh = events.filter((e) => e.source_ip === "91.121.79.195");
    expect(ssh.length).toBeGreaterThan(1);
    expect(ssh[0]).toMatchObject({ event_type: "auth_attempt", detected_threat: "crowdsecurity/ssh-bf", payload: { scenario: "crowdsecurity/ssh-bf" } });
    expect(ssh[0]!.payload.details.meta.target_user).toBe("root");
    expect(ssh[0]!.occurred_at).toBe("2020-10-02T17:09:08.000Z");
  });

  it("once approved and executed, the proposal reaches bouncers as the watcher's decision", async () => {
    const requests = (await admin("GET", "/security/actions/?type=block_entity")).json().items as { id: string; payload: { value: string } }[];
    const id = requests.find((r) => r.payload.value === "91.121.79.178")!.id;
    const approved = await t.app.inject({ method: "POST", url: `/security/actions/${id}/approve`, headers: t.auth(), payload: { note: "seen in the ssh logs" } });
    expect(approved.statusCode, approved.body).toBe(200);
    const executed = await t.app.inject({ method: "POST", url: `/security/actions/${id}/execute`, headers: t.auth() });
    expect(executed.statusCode, executed.body).toBe(200);
    const created = await t.app.inject({ method: "POST", url: "/crowdsec/bouncers", headers: t.auth(), payload: { name: "chain" } });
    const key = created.json().key as string;
    rememberSecret(key);
    const res = await t.app.inject({ method: "GET", url: "/v1/decisions?ip=91.121.79.178", headers: { "x-api-key": key } });
    expect(res.json()).toEqual([expect.objectContaining({ origin: "agent-1", scenario: "crowdsecurity/ssh-bf", scope: "Ip", type: "ban", value: "91.121.79.178" })]);
  });

  it("raises no second request for a source whose request is still open", async () => {
    // A new alert (not a resend of the stored one) about the same source.
    const alerts = (JSON.parse(readFileSync(join(CROWDSEC_FIXTURES, "alert_ssh-bf.json"), "utf8")) as Record<string, unknown>[]).map((a) => ({ ...a, message: "seen again" }));
    expect((await lapi("POST", "/v1/alerts", alerts, token)).statusCode).toBe(201);
    const requests = (await admin("GET", "/security/actions/?type=block_entity")).json().items as { payload: { value: string } }[];
    expect(requests.filter((r) => r.payload.value === "91.121.79.195")).toHaveLength(1);
  });

  it("answers a resend after a failed push with the same ids and stores each alert, its events and its proposal once", async () => {
    const base = JSON.parse(readFileSync(join(CROWDSEC_FIXTURES, "alert_ssh-bf.json"), "utf8"))[0] as Record<string, unknown>;
    const alert = { ...base, source: { ...(base.source as object), ip: "45.33.70.9", value: "45.33.70.9" }, message: "retry test" };
    const countRows = async () => ({
      alerts: Number((await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM crowdsec_alerts WHERE source_value = '45.33.70.9'"))[0]!.n),
      events: Number((await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM honeypot_events WHERE source_ip = '45.33.70.9'"))[0]!.n),
      requests: Number((await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM action_requests WHERE payload->>'value' = '45.33.70.9'"))[0]!.n),
    });
    // A real storage failure: the events table refuses inserts until the trigger is dropped.
    await t.db.query(`CREATE FUNCTION test_refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'simulated storage outage'; END $$`);
    await t.db.query("CREATE TRIGGER test_refuse_event BEFORE INSERT ON honeypot_events FOR EACH ROW EXECUTE FUNCTION test_refuse_event()");
    let failed;
    try {
      failed = await lapi("POST", "/v1/alerts", [alert], token);
    } finally {
      await t.db.query("DROP TRIGGER test_refuse_event ON honeypot_events");
      await t.db.query("DROP FUNCTION test_refuse_event()");
    }
    expect(failed.statusCode, failed.body).toBe(500);
    expect(await countRows()).toEqual({ alerts: 1, events: 0, requests: 0 });
    const retried = await lapi("POST", "/v1/alerts", [alert], token);
    expect(retried.statusCode, retried.body).toBe(201);
    const ids = retried.json() as string[];
    const after = await countRows();
    expect(after.alerts).toBe(1);
    expect(after.events).toBeGreaterThan(0);
    expect(after.requests).toBe(1);
    // The identical resend once more: the same id, nothing new stored or proposed.
    const again = await lapi("POST", "/v1/alerts", [alert], token);
    expect(again.statusCode).toBe(201);
    expect(again.json()).toEqual(ids);
    expect(await countRows()).toEqual(after);
    const audit = (await admin("GET", `/audit/entries?target_type=crowdsec_alert&target_id=${ids[0]}`)).json().items as { action: string; details: Record<string, unknown> }[];
    expect(audit).toEqual([expect.objectContaining({ action: "crowdsec.alert.received" })]);
    expect(audit[0]!.details).toMatchObject({ source: { scope: "Ip", value: "45.33.70.9" }, proposal: { via: "sentinel", action_request_id: expect.any(String) } });
  });

  it("in elevated mode, an alert about a public IP no honeypot saw is not blocked without approval", async () => {
    const policy = await t.app.inject({ method: "POST", url: "/security/policy/", headers: t.auth(), payload: { default_mode: "elevated" } });
    expect(policy.statusCode, policy.body).toBe(200);
    try {
      const base = JSON.parse(readFileSync(join(CROWDSEC_FIXTURES, "alert_ssh-bf.json"), "utf8"))[0] as Record<string, unknown>;
      const alert = { ...base, source: { ...(base.source as object), ip: "45.33.71.7", value: "45.33.71.7" }, message: "elevated test" };
      const res = await lapi("POST", "/v1/alerts", [alert], token);
      expect(res.statusCode, res.body).toBe(201);
      // The agent's events exist (its own keyless sensor) ...
      const [events] = await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM honeypot_events WHERE source_ip = '45.33.71.7'");
      expect(Number(events!.n)).toBeGreaterThan(0);
      // ... but they are no honeypot evidence: the request waits for an approver, nothing is blocked.
      const requests = (await admin("GET", "/security/actions/?type=block_entity")).json().items as { payload: { value: string }; status: string; decision: { outcome: string } }[];
      const mine = requests.filter((r) => r.payload.value === "45.33.71.7");
      expect(mine).toHaveLength(1);
      expect(mine[0]!.status).toBe("pending");
      expect(mine[0]!.decision.outcome).not.toBe("ALLOW");
      expect((await admin("GET", "/security/policy/check?ip=45.33.71.7")).json().blocked).toBe(false);
    } finally {
      const back = await t.app.inject({ method: "POST", url: "/security/policy/", headers: t.auth(), payload: { default_mode: "normal" } });
      expect(back.statusCode, back.body).toBe(200);
    }
  });

  it("proposes a range block for a Range-scoped alert through the action workflow, once while it is open", async () => {
    const alert = JSON.parse(readFileSync(join(CROWDSEC_FIXTURES, "alert_ssh-bf.json"), "utf8"))[0] as Record<string, unknown>;
    const ranged = { ...alert, source: { scope: "Range", value: "45.33.80.0/24" }, decisions: [{ duration: "4h", origin: "crowdsec", scenario: "crowdsecurity/ssh-bf", scope: "Range", value: "45.33.80.0/24", type: "ban" }] };
    for (let i = 0; i < 2; i++) expect((await lapi("POST", "/v1/alerts", [{ ...ranged, message: `try ${i}` }], token)).statusCode).toBe(201);
    const requests = (await admin("GET", "/security/actions/?type=block_entity")).json().items as { payload: Record<string, unknown>; reason: string }[];
    const forRange = requests.filter((r) => r.payload.value === "45.33.80.0/24");
    expect(forRange).toEqual([expect.objectContaining({ payload: { entity_type: "cidr", value: "45.33.80.0/24", duration_seconds: 14_400 } })]);
    expect(forRange[0]!.reason).toMatch(/^crowdsec\/agent-1: crowdsecurity\/ssh-bf \(try 0\)/);
  });

  it("lists alerts in the contract's shape, filtered by ip and scenario", async () => {
    const all = await lapi("GET", "/v1/alerts", undefined, token);
    expect(all.statusCode).toBe(200);
    expect(validate("GetAlertsResponse", all.json()), JSON.stringify(validate.errors)).toBe(true);
    const byIp = (await lapi("GET", "/v1/alerts?ip=91.121.79.195", undefined, token)).json() as { scenario: string; machine_id: string }[];
    expect(byIp.length).toBe(2);
    expect(byIp.every((a) => a.scenario === "crowdsecurity/ssh-bf" && a.machine_id === "agent-1")).toBe(true);
    expect((await lapi("GET", "/v1/alerts?scenario=crowdsecurity/ddos", undefined, token)).json()).toHaveLength(1);
  });

  it("refuses a malformed alert with 400 naming the field", async () => {
    const res = await lapi("POST", "/v1/alerts", [{ scenario: "x" }], token);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain("[0].scenario_hash");
    expect((await lapi("POST", "/v1/alerts", { not: "an array" }, token)).statusCode).toBe(400);
  });

  it("turns DELETE /v1/decisions into an unblock request, never a direct deletion", async () => {
    const blocked = await t.app.inject({ method: "POST", url: "/security/policy/blocks", headers: t.auth(), payload: { entity_type: "ip", value: "45.33.60.1", reason: "manual" } });
    expect(blocked.statusCode).toBe(201);
    const res = await lapi("DELETE", "/v1/decisions?ip=45.33.60.1", undefined, token);
    expect(res.statusCode).toBe(200);
    expect(validate("DeleteDecisionResponse", res.json())).toBe(true);
    expect(res.json()).toEqual({ nbDeleted: "0", nbRequested: "1", nbMatched: "1", truncated: false });
    // A repeat finds the open request (its open key) instead of stacking another.
    const repeat = await lapi("DELETE", "/v1/decisions?ip=45.33.60.1", undefined, token);
    expect(repeat.json()).toEqual({ nbDeleted: "0", nbRequested: "1", nbMatched: "1", truncated: false });
    const requests = (await admin("GET", "/security/actions/?type=unblock_entity")).json().items as { payload: { value: string }; status: string }[];
    expect(requests).toEqual([expect.objectContaining({ payload: { entity_type: "ip", value: "45.33.60.1" }, status: "pending" })]);
    expect((await admin("GET", `/security/policy/blocks/${blocked.json().id}`)).json().active).toBe(true);
    expect((await lapi("DELETE", "/v1/decisions/abc", undefined, token)).statusCode).toBe(400);
  });

  it("refuses DELETE /v1/decisions without a filter, and raises at most 100 unblock requests per call", async () => {
    const bare = await lapi("DELETE", "/v1/decisions", undefined, token);
    expect(bare.statusCode).toBe(400);
    expect(validate("ErrorResponse", bare.json())).toBe(true);
    expect(bare.json().message).toContain("a filter is required");
    expect((await lapi("DELETE", "/v1/decisions?type=ban&scope=ip", undefined, token)).statusCode).toBe(400);
    const before = (await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM action_requests WHERE action_type = 'unblock_entity'"))[0]!.n;
    expect(before).toBe(1);
    for (let i = 0; i < 105; i++) await t.app.services.blocklist.createBlock(systemActor("test"), { entity_type: "ip", value: `45.34.0.${i + 1}`, reason: "bulk-cap-test", force: false });
    const res = await lapi("DELETE", "/v1/decisions?scenario=bulk-cap-test", undefined, token);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ nbDeleted: "0", nbRequested: "100", nbMatched: "105", truncated: true });
    const after = (await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM action_requests WHERE action_type = 'unblock_entity'"))[0]!.n;
    expect(Number(after) - Number(before)).toBe(100);
  });

  it("accepts bouncer usage metrics with 201", async () => {
    const created = await t.app.inject({ method: "POST", url: "/crowdsec/bouncers", headers: t.auth(), payload: { name: "metrics" } });
    const key = created.json().key as string;
    rememberSecret(key);
    const res = await t.app.inject({ method: "POST", url: "/v1/usage-metrics", headers: { "x-api-key": key }, payload: { remediation_components: [{ version: "v0.0.25", utc_startup_timestamp: 1 }] } });
    expect(res.statusCode).toBe(201);
    const [row] = await t.db.query<{ machine_type: string }>("SELECT machine_type FROM crowdsec_usage_metrics");
    expect(row?.machine_type).toBe("bouncer");
    const audit = (await admin("GET", "/audit/entries?target_type=crowdsec_usage_metrics")).json().items as { action: string; actor: { type: string } }[];
    expect(audit).toEqual([expect.objectContaining({ action: "crowdsec.usage_metrics.stored" })]);
  });

  it("ends a deleted watcher's tokens at once and audits registration, validation and deletion", async () => {
    const id = (await admin("GET", "/crowdsec/watchers")).json()[0].id as string;
    expect((await admin("DELETE", "/crowdsec/watchers/agent-1")).statusCode).toBe(200);
    const res = await lapi("GET", "/v1/heartbeat", undefined, token);
    expect(res.statusCode).toBe(401);
    const audit = (await admin("GET", `/audit/entries?target_type=crowdsec_watcher&target_id=${id}`)).json().items as { action: string; actor: { type: string } }[];
    const actions = audit.map((e) => e.action);
    expect(actions[0]).toBe("crowdsec.watcher.registered");
    expect(actions[1]).toBe("crowdsec.watcher.validated");
    expect(actions.at(-1)).toBe("crowdsec.watcher.deleted");
    // each login (it rewrites the scenarios, agent and address) in between
    expect(actions.slice(2, -1).length).toBeGreaterThan(0);
    expect(actions.slice(2, -1).every((a) => a === "crowdsec.watcher.login")).toBe(true);
    expect(audit[0]!.actor.type).toBe("watcher");
    expect(JSON.stringify(audit)).not.toContain(password);
  });
});
