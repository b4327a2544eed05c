// The wire details bouncers and agents depend on: Go's duration format (both directions), origin and
// scenario read back from a block, filters, and alerts read the way CrowdSec's Go server reads them.
import { describe, expect, it } from "vitest";
import { goDuration, matchesFilter, originAndScenario, parseFilter, serializeDecision, toEntry } from "./decision-feed.ts";
import { eventTypeOf, parseGoDuration, readAlert } from "./alerts.ts";

describe("goDuration", () => {
  it("prints what Go's time.Duration.String() prints", () => {
    expect(goDuration(0)).toBe("0s");
    expect(goDuration(500)).toBe("500ms");
    expect(goDuration(1500)).toBe("1.5s");
    expect(goDuration(61_000)).toBe("1m1s");
    expect(goDuration(3_600_000)).toBe("1h0m0s");
    expect(goDuration(4 * 3_600_000 - 1500)).toBe("3h59m58.5s");
    expect(goDuration(-1000)).toBe("-1s");
    expect(goDuration(12_345)).toBe("12.345s");
    expect(goDuration(Number.POSITIVE_INFINITY)).toBe("87600h0m0s");
  });
  it("round-trips through the parser agents' durations go through", () => {
    for (const ms of [1000, 61_000, 3_600_000, 14_399_000, 90_061_500]) expect(parseGoDuration(goDuration(ms))! * 1000).toBeCloseTo(ms, 6);
    expect(parseGoDuration("4h")).toBe(14_400);
    expect(parseGoDuration("1h30m")).toBe(5400);
    expect(parseGoDuration("-2s")).toBe(-2);
    expect(parseGoDuration("4 hours")).toBeUndefined();
    expect(parseGoDuration("")).toBeUndefined();
  });
});

describe("origin and scenario of a block", () => {
  it("names the watcher and its scenario for blocks from alerts, honeypot for the sentinel's, portcullis otherwise", () => {
    expect(originAndScenario("crowdsec/web-1: crowdsecurity/ssh-bf (Ip 1.2.3.4 performed ...)", "system:actions")).toEqual({ origin: "web-1", scenario: "crowdsecurity/ssh-bf" });
    expect(originAndScenario("brute force on cowrie", "system:sentinel")).toEqual({ origin: "honeypot", scenario: "brute force on cowrie" });
    expect(originAndScenario("", "admin")).toEqual({ origin: "portcullis", scenario: "portcullis/manual" });
    // as the action workflow writes them
    const id = "0192f0c4-7d2e-7000-8000-000000000000";
    expect(originAndScenario(`action ${id}: crowdsec/web-1: crowdsecurity/ssh-bf (m)`, "admin")).toEqual({ origin: "web-1", scenario: "crowdsecurity/ssh-bf" });
    expect(originAndScenario(`action ${id}: sentinel: brute_force from 5.188.86.172: 40 failed logins`, "system:actions")).toEqual({ origin: "honeypot", scenario: "portcullis/brute_force" });
    expect(originAndScenario(`action ${id}: repeat offender`, "alice")).toEqual({ origin: "portcullis", scenario: "repeat offender" });
  });
  it("serialises exactly CrowdSec's field order with JSON-escaped strings", () => {
    const e = toEntry({ id: 7, block_id: "b", scope: "Ip", value: "1.2.3.4", reason: 'say "hi"', created_by: "admin", expires_at: 10_000, deleted_seq: null, deleted_at: null, deleted_by: null });
    expect(serializeDecision(e, 8_500)).toBe('{"duration":"1.5s","id":7,"origin":"portcullis","scenario":"say \\"hi\\"","scope":"Ip","type":"ban","value":"1.2.3.4"}');
    expect(JSON.parse(serializeDecision(e, 8_500))).toMatchObject({ scenario: 'say "hi"' });
  });
  it("filters by scopes, origins and scenario words case-insensitively", () => {
    const e = toEntry({ id: 1, block_id: "b", scope: "Range", value: "1.2.3.0/24", reason: "crowdsec/web-1: crowdsecurity/SSH-bf", created_by: "x", expires_at: null, deleted_seq: null, deleted_at: null, deleted_by: null });
    expect(matchesFilter(e, parseFilter({}, "ip,range"))).toBe(true);
    expect(matchesFilter(e, parseFilter({ scopes: "ip" }))).toBe(false);
    expect(matchesFilter(e, parseFilter({ origins: "web-1,cscli" }))).toBe(true);
    expect(matchesFilter(e, parseFilter({ scenarios_containing: "ssh" }))).toBe(true);
    expect(matchesFilter(e, parseFilter({ scenarios_not_containing: "ssh" }))).toBe(false);
    expect(matchesFilter(e, parseFilter({ type: "captcha" }))).toBe(false);
  });
});

describe("alerts", () => {
  const alert = {
    Scenario: "crowdsecurity/ssh-bf", scenario_hash: "h", scenario_version: "0.1", message: "m", events_count: 1, start_at: "s", stop_at: "s",
    capacity: 5, leakspeed: "10s", simulated: false, Events: [{ Timestamp: "2020-10-02T17:09:08Z", Meta: [{ Key: "k", Value: "v" }] }], Source: { Scope: "Ip", Value: "91.121.79.195" },
  };
  it("reads field names case-insensitively, as Go's encoding/json does", () => {
    const r = readAlert(alert, 0);
    expect(r.ok && r.alert.events[0]).toEqual({ timestamp: "2020-10-02T17:09:08Z", meta: [{ key: "k", value: "v" }] });
    expect(r.ok && r.alert.source).toMatchObject({ scope: "Ip", value: "91.121.79.195" });
  });
  it("names the missing required field", () => {
    const { leakspeed: _, ...without } = alert;
    expect(readAlert(without, 3)).toEqual({ ok: false, path: "[3].leakspeed", message: "leakspeed in body is required" });
  });
  it("classifies scenarios by their hub names", () => {
    expect(eventTypeOf("crowdsecurity/ssh-bf")).toBe("auth_attempt");
    expect(eventTypeOf("crowdsecurity/http-probing")).toBe("scan");
    expect(eventTypeOf("crowdsecurity/http-cve-2021-41773")).toBe("exploitation");
    expect(eventTypeOf("fail2ban/sshd")).toBe("auth_attempt");
    expect(eventTypeOf("crowdsecurity/ddos")).toBe("other");
  });
});
