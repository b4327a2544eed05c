// Native events (the seed's contract): validation with field paths, credential-looking payload
// keys and credentials in payload strings moved to secrets, raw redacted byte-exactly elsewhere.
import { describe, expect, it } from "vitest";
import { fromNative } from "./native.ts";
import { REDACTED } from "./types.ts";

const NOW = new Date("2026-01-01T12:00:00Z");
const run = (value: unknown) => {
  const raw = JSON.stringify(value);
  return { raw, result: fromNative(JSON.parse(raw), raw, NOW) };
};

describe("fromNative: valid events", () => {
  it("normalises the seed's minimal and full forms", () => {
    const min = run({ source_ip: "203.0.113.5", event_type: "connection" });
    expect(min.result).toEqual({
      ok: true,
      event: { eventId: null, sourceIp: "203.0.113.5", eventType: "connection", detectedThreat: null, occurredAt: null, payload: {}, secrets: {}, raw: min.raw, rawOriginal: min.raw },
    });
    const full = run({
      source_ip: "2001:DB8::0:1",
      event_type: "exploitation",
      payload: { path: "/wp-login.php", n: 3, tags: ["a"] },
      detected_threat: "sql_injection",
      event_id: "sensor-7/000123",
      occurred_at: "2026-01-01T11:59:00.250+01:00",
    });
    expect(full.result.ok && full.result.event).toMatchObject({
      eventId: "sensor-7/000123",
      sourceIp: "2001:db8::1",
      detectedThreat: "sql_injection",
      occurredAt: new Date("2026-01-01T10:59:00.250Z"),
      payload: { path: "/wp-login.php", n: 3, tags: ["a"] },
    });
  });

  it("accepts occurred_at up to 5 minutes ahead (clock skew) and refuses beyond", () => {
    expect(run({ source_ip: "1.2.3.4", event_type: "scan", occurred_at: "2026-01-01T12:05:00Z" }).result.ok).toBe(true);
    expect(run({ source_ip: "1.2.3.4", event_type: "scan", occurred_at: "2026-01-01T12:05:01Z" }).result).toMatchObject({
      ok: false,
      code: "EVENT_OCCURRED_IN_FUTURE",
      path: "occurred_at",
    });
  });

  it("moves credential-looking keys (at any depth) to secrets and redacts credentials in strings", () => {
    const { raw, result } = run({
      source_ip: "1.2.3.4",
      event_type: "auth_attempt",
      payload: { username: "root", password: "toor123", login: { api_key: 12345, token: "tkn-xyz" }, command: "curl -u a:pw-in-cmd http://x", passive: true },
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.secrets).toEqual({ password: "toor123", "login.api_key": "12345", "login.token": "tkn-xyz", "command.basic_auth": "pw-in-cmd" });
    expect(result.event.payload).toEqual({ username: "root", login: {}, command: `curl -u a:${REDACTED} http://x`, passive: true });
    for (const v of ["toor123", "12345", "tkn-xyz", "pw-in-cmd"]) expect(result.event.raw).not.toContain(v);
    expect(JSON.parse(result.event.raw)).toEqual({
      source_ip: "1.2.3.4",
      event_type: "auth_attempt",
      payload: { username: "root", password: REDACTED, login: { api_key: REDACTED, token: REDACTED }, command: `curl -u a:${REDACTED} http://x`, passive: true },
    });
    expect(result.event.rawOriginal).toBe(raw);
  });
});

describe("fromNative: rejections", () => {
  it.each([
    [[1], "EVENT_NOT_AN_OBJECT", ""],
    [{ source_ip: "1.2.3.4", event_type: "scan", extra: 1 }, "EVENT_UNKNOWN_FIELD", "extra"],
    [{ event_type: "scan" }, "EVENT_MISSING_FIELD", "source_ip"],
    [{ source_ip: "1.2.3.999", event_type: "scan" }, "EVENT_INVALID_SOURCE_IP", "source_ip"],
    [{ source_ip: "1.2.3.4/32", event_type: "scan" }, "EVENT_INVALID_SOURCE_IP", "source_ip"],
    [{ source_ip: 16909060, event_type: "scan" }, "EVENT_INVALID_SOURCE_IP", "source_ip"],
    [{ source_ip: "1.2.3.4" }, "EVENT_MISSING_FIELD", "event_type"],
    [{ source_ip: "1.2.3.4", event_type: "brute_force" }, "EVENT_INVALID_TYPE", "event_type"],
    [{ source_ip: "1.2.3.4", event_type: "scan", payload: [1] }, "EVENT_INVALID_FIELD", "payload"],
    [{ source_ip: "1.2.3.4", event_type: "scan", payload: "x" }, "EVENT_INVALID_FIELD", "payload"],
    [{ source_ip: "1.2.3.4", event_type: "scan", detected_threat: 5 }, "EVENT_INVALID_FIELD", "detected_threat"],
    [{ source_ip: "1.2.3.4", event_type: "scan", detected_threat: "" }, "EVENT_INVALID_FIELD", "detected_threat"],
    [{ source_ip: "1.2.3.4", event_type: "scan", event_id: "" }, "EVENT_INVALID_FIELD", "event_id"],
    [{ source_ip: "1.2.3.4", event_type: "scan", event_id: "x".repeat(201) }, "EVENT_INVALID_FIELD", "event_id"],
    [{ source_ip: "1.2.3.4", event_type: "scan", event_id: "a\nb" }, "EVENT_INVALID_FIELD", "event_id"],
    [{ source_ip: "1.2.3.4", event_type: "scan", occurred_at: "yesterday" }, "EVENT_INVALID_FIELD", "occurred_at"],
    [{ source_ip: "1.2.3.4", event_type: "scan", occurred_at: "2026-01-01T10:00:00" }, "EVENT_INVALID_FIELD", "occurred_at"],
    [{ source_ip: "1.2.3.4", event_type: "scan", occurred_at: 1767225600 }, "EVENT_INVALID_FIELD", "occurred_at"],
  ])("%j -> %s at %s", (value, code, path) => {
    const { result } = run(value);
    expect(result).toMatchObject({ ok: false, code, path });
    if (!result.ok) expect(result.reason.length).toBeGreaterThan(5);
  });

  it("refuses a payload nested deeper than 32 levels", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { d: deep };
    expect(run({ source_ip: "1.2.3.4", event_type: "scan", payload: deep }).result).toMatchObject({ ok: false, path: "payload" });
  });
});
