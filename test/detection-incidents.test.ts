// Incidents and the sentinel's response path (proposeBlock, also what CrowdSec alerts use) on a real
// database: one incident per (source, threat), one open block request per source with its evidence,
// the policy's DENY recorded on the incident, an address already blocked left alone; the incidents
// API (filters, paging, resolve, audit).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";

type Json = Record<string, any>;

describe.each(DB_KINDS)("incidents and proposeBlock on %s", (kind) => {
  let t: TestApp;
  let analyst: { token: string }, viewer: { token: string };

  beforeAll(async () => {
    t = await createTestApp(kind);
    analyst = await createKeyForRole(t.db, "analyst");
    viewer = await createKeyForRole(t.db, "viewer");
  });
  afterAll(async () => t?.close());

  const call = (method: "GET" | "POST", url: string, token: string, payload?: unknown) =>
    t.app.inject({ method, url, headers: t.auth(token), ...(payload !== undefined ? { payload: payload as object } : {}) });
  const ok = async (method: "GET" | "POST", url: string, token: string, payload?: unknown) => {
    const res = await call(method, url, token, payload);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Json;
  };
  const propose = (sourceIp: string, threat = "brute_force", severity: "critical" | "high" | "medium" | "low" = "high") =>
    t.app.services.sentinel.proposeBlock({
      sourceIp,
      threat,
      severity,
      origin: "test",
      reason: `${threat} seen by the test`,
      evidence: { alert_ids: [1, 2, 3] },
    });
  const requestsFor = async (ip: string) =>
    ((await ok("GET", "/security/actions/?type=block_entity&limit=1000", viewer.token)).items as Json[]).filter((r) => r.payload.value === ip);

  it("opens an incident and raises one block request with its evidence; the policy's decision (normal mode: approval) is recorded", async () => {
    const result = await propose("5.188.86.172");
    expect(result.status).toBe("pending");
    const request = await ok("GET", `/security/actions/${result.actionRequestId}`, viewer.token);
    expect(request).toMatchObject({
      action_type: "block_entity",
      status: "pending",
      requested_by: "system:sentinel",
      payload: { entity_type: "ip", value: "5.188.86.172", duration_seconds: 86_400 },
      evidence: { alert_ids: [1, 2, 3], origin: "test", incident_id: result.incidentId, threat: "brute_force" },
    });
    expect(request.decision.outcome).toBe("REQUIRE_APPROVAL");
    const incident = await ok("GET", `/security/incidents/${result.incidentId}`, viewer.token);
    expect(incident).toMatchObject({
      source_ip: "5.188.86.172",
      threat: "brute_force",
      severity: "high",
      status: "open",
      action_request_id: result.actionRequestId,
      evidence: { response: { action_request_id: result.actionRequestId, status: "pending", outcome: "REQUIRE_APPROVAL" } },
    });
    const audit = (await ok("GET", `/audit/entries?target_type=incident&target_id=${result.incidentId}&limit=100`, viewer.token)).items as Json[];
    expect(audit.map((e) => e.action)).toEqual(["detection.incident.opened", "detection.incident.responded"]);
  });

  it("never two open requests for one source: the same or another threat links the open request", async () => {
    const again = await propose("5.188.86.172");
    const other = await propose("5.188.86.172", "port_scan", "medium");
    const first = (await ok("GET", "/security/incidents?source_ip=5.188.86.172&threat=brute_force", viewer.token)).items[0];
    expect(again.actionRequestId).toBe(first.action_request_id);
    expect(other.actionRequestId).toBe(first.action_request_id);
    expect(other.incidentId).not.toBe(first.id);
    expect(await requestsFor("5.188.86.172")).toHaveLength(1);
    // Concurrent proposals for a fresh source (the database holds the open key): still one request.
    const results = await Promise.all(["brute_force", "port_scan", "credential_stuffing", "brute_force"].map((threat) => propose("185.222.209.151", threat)));
    expect(new Set(results.map((r) => r.actionRequestId)).size).toBe(1);
    expect(await requestsFor("185.222.209.151")).toHaveLength(1);
  });

  it("severity only rises while an incident is open, and a rise is audited", async () => {
    const { incidentId } = await propose("5.188.86.172", "brute_force", "critical");
    await propose("5.188.86.172", "brute_force", "low");
    const incident = await ok("GET", `/security/incidents/${incidentId}`, viewer.token);
    expect(incident.severity).toBe("critical");
    const audit = (await ok("GET", `/audit/entries?target_type=incident&target_id=${incidentId}&limit=100`, viewer.token)).items as Json[];
    expect(audit.map((e) => e.action)).toContain("detection.incident.escalated");
  });

  it("a private address is never blocked: the policy's DENY is recorded on the incident and not asked again", async () => {
    const result = await propose("10.20.30.40");
    expect(result).toMatchObject({ actionRequestId: null, status: "denied" });
    const incident = await ok("GET", `/security/incidents/${result.incidentId}`, viewer.token);
    expect(incident.evidence.response).toMatchObject({ status: "denied", outcome: "DENY", action_request_id: null });
    expect(incident.evidence.response.explanation).toContain("never-block-special-networks");
    expect(await requestsFor("10.20.30.40")).toHaveLength(0);
    const audit = (await ok("GET", `/audit/entries?target_type=incident&target_id=${result.incidentId}&limit=100`, viewer.token)).items as Json[];
    expect(audit.map((e) => e.action)).toContain("detection.incident.request_denied");
    const denials = async () => Number((await t.db.query<{ n: string }>("SELECT count(*) AS n FROM audit_log WHERE action = 'actions.request.denied'"))[0]!.n);
    const before = await denials();
    expect((await propose("10.20.30.40")).status).toBe("denied");
    expect(await denials()).toBe(before);
    expect((await ok("GET", `/security/policy/check?ip=10.20.30.40`, viewer.token)).blocked).toBe(false);
  });

  it("an address that is already blocked gets no request", async () => {
    const block = await t.app.inject({ method: "POST", url: "/security/policy/blocks", headers: t.auth(), payload: { entity_type: "ip", value: "91.240.118.172", reason: "known" } });
    expect(block.statusCode, block.body).toBe(201);
    const result = await propose("91.240.118.172");
    expect(result).toMatchObject({ actionRequestId: null, status: "already_blocked" });
    expect(await requestsFor("91.240.118.172")).toHaveLength(0);
  });

  it("bounds evidence another producer hands in: a huge list is replaced by its size, the short facts are kept", async () => {
    const decisions = Array.from({ length: 2_000 }, (_, i) => ({ scope: "Ip", value: `198.51.100.${i % 250}`, type: "ban", duration: "4h", origin: "crowdsec" }));
    const result = await t.app.services.sentinel.proposeBlock({
      sourceIp: "45.155.205.77",
      threat: "crowdsecurity/ssh-bf",
      severity: "high",
      origin: "crowdsec/agent-1",
      reason: "r".repeat(10_000),
      evidence: { crowdsec_alert_id: 7, scenario: "crowdsecurity/ssh-bf", proposed_decisions: decisions },
    });
    const incident = await ok("GET", `/security/incidents/${result.incidentId}`, viewer.token);
    expect(incident.evidence).toMatchObject({
      crowdsec_alert_id: 7,
      scenario: "crowdsecurity/ssh-bf",
      proposed_decisions: { truncated: true, json_chars: JSON.stringify(decisions).length },
      evidence_truncated: { keys: 3 },
      origin: "crowdsec/agent-1",
    });
    expect(incident.evidence.reason).toHaveLength(2_000);
    expect(JSON.stringify(incident.evidence).length).toBeLessThan(40_000);
    const request = await ok("GET", `/security/actions/${result.actionRequestId}`, viewer.token);
    expect(request.evidence.proposed_decisions).toMatchObject({ truncated: true });
  });

  it("refuses a source that is not an address", async () => {
    await expect(propose("not-an-ip")).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
  });

  it("lists incidents newest first with filters and cursor paging", async () => {
    const all = (await ok("GET", "/security/incidents?limit=1000", viewer.token)).items as Json[];
    expect(all.length).toBeGreaterThanOrEqual(6);
    const stamps = all.map((i) => `${i.opened_at}|${i.id}`);
    expect([...stamps].sort().reverse()).toEqual(stamps);
    const page1 = await ok("GET", "/security/incidents?limit=2", viewer.token);
    expect(page1.items).toHaveLength(2);
    const page2 = await ok("GET", `/security/incidents?limit=2&cursor=${page1.next_cursor}`, viewer.token);
    expect(page2.items.map((i: Json) => i.id)).toEqual(all.slice(2, 4).map((i) => i.id));
    const bySource = (await ok("GET", "/security/incidents?source_ip=185.222.209.151", viewer.token)).items as Json[];
    expect(new Set(bySource.map((i) => i.threat))).toEqual(new Set(["brute_force", "port_scan", "credential_stuffing"]));
    const critical = (await ok("GET", "/security/incidents?severity=critical&status=open", viewer.token)).items as Json[];
    expect(critical.map((i) => i.source_ip)).toEqual(["5.188.86.172"]);
    // Any spelling of an address finds it.
    expect((await ok("GET", "/security/incidents?source_ip=::ffff:5.188.86.172", viewer.token)).items.length).toBeGreaterThan(0);
    const bad = await call("GET", "/security/incidents?source_ip=nope", viewer.token);
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "source_ip" }] });
    expect((await call("GET", "/security/incidents?severity=urgent", viewer.token)).statusCode).toBe(400);
    expect((await call("GET", "/security/incidents?cursor=zzz", viewer.token)).statusCode).toBe(400);
  });

  it("an analyst resolves an incident (audited with the note); twice is a conflict; a viewer may not", async () => {
    const [incident] = (await ok("GET", "/security/incidents?source_ip=10.20.30.40", viewer.token)).items as Json[];
    expect((await call("POST", `/security/incidents/${incident!.id}/resolve`, viewer.token, { note: "x" })).statusCode).toBe(403);
    const resolved = await ok("POST", `/security/incidents/${incident!.id}/resolve`, analyst.token, { note: "internal scanner, allow-listed" });
    expect(resolved).toMatchObject({ status: "resolved", resolved_by: expect.stringMatching(/^analyst-/) });
    const again = await call("POST", `/security/incidents/${incident!.id}/resolve`, analyst.token);
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe("INCIDENT_ALREADY_RESOLVED");
    const audit = (await ok("GET", `/audit/entries?target_type=incident&target_id=${incident!.id}&limit=100`, viewer.token)).items as Json[];
    expect(audit.at(-1)).toMatchObject({ action: "detection.incident.resolved", details: { note: "internal scanner, allow-listed" } });
    expect((await call("POST", "/security/incidents/00000000-0000-4000-8000-000000000000/resolve", analyst.token)).statusCode).toBe(404);
    expect((await call("GET", "/security/incidents/nope", viewer.token)).statusCode).toBe(404);
    // A new detection for the source opens a new incident.
    const next = await propose("10.20.30.40");
    expect(next.incidentId).not.toBe(incident!.id);
  });
});
