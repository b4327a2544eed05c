// OpenCanary adapter: log lines in OpenCanary's own format (sanitizeLog's fields, json.dumps with
// sort_keys) and its webhook body; logtype mapping; credentials out of payload and raw.
import { describe, expect, it } from "vitest";
import { fromOpenCanary, OPENCANARY_LOGTYPES } from "./opencanary.ts";
import { REDACTED } from "./types.ts";

/** An alert as OpenCanary's logger writes it: sanitizeLog's fields, keys sorted, Python separators. */
const line = (logtype: number, logdata: Record<string, unknown>, over: Record<string, unknown> = {}): string => {
  const fields: Record<string, unknown> = {
    dst_host: "10.0.0.5",
    dst_port: 22,
    local_time: "2026-01-01 12:00:00.123456",
    local_time_adjusted: "2026-01-01 13:00:00.123456",
    logdata,
    logtype,
    node_id: "canary-1",
    src_host: "198.51.100.23",
    src_port: 40123,
    utc_time: "2026-01-01 12:00:00.123456",
    ...over,
  };
  const sorted = Object.fromEntries(Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1)));
  return JSON.stringify(sorted).replace(/","/g, '", "').replace(/":/g, '": ');
};

const ok = (text: string) => {
  const r = fromOpenCanary(JSON.parse(text), text);
  if (!r.ok) throw new Error(`rejected ${r.code} ${r.path}: ${r.reason}`);
  return r.event;
};

describe("OpenCanary logtypes", () => {
  it.each([
    [1001, "other"],
    [2000, "auth_attempt"],
    [3000, "connection"],
    [3001, "auth_attempt"],
    [4000, "connection"],
    [4001, "session"],
    [4002, "auth_attempt"],
    [5001, "scan"],
    [5002, "scan"],
    [5003, "scan"],
    [5004, "scan"],
    [5005, "scan"],
    [6001, "auth_attempt"],
    [8001, "auth_attempt"],
    [99001, "other"],
    [424242, "other"],
  ])("%i -> %s", (logtype, type) => {
    const ev = ok(line(logtype, {}));
    expect(ev.eventType).toBe(type);
    expect(ev.payload.sensor_event).toBe(`opencanary:${logtype}`);
    expect(ev.sourceIp).toBe("198.51.100.23");
    expect(ev.occurredAt?.toISOString()).toBe("2026-01-01T12:00:00.123Z");
    expect(ev.payload).toMatchObject({ src_port: 40123, dst_ip: "10.0.0.5", dst_port: 22, node_id: "canary-1" });
  });

  it("covers every LOG_* constant of OpenCanary's logger", () => {
    const constants = [1000, 1001, 1002, 1003, 1004, 1005, 1006, 2000, 3000, 3001, 4000, 4001, 4002, 5000, 5001, 5002, 5003, 5004, 5005, 6001, 7001, 8001, 9001, 9002, 10001, 11001, 12001, 13001, 14001, 15001, 16001, 17001, 18001, 18002, 18003, 18004, 18005];
    for (let u = 99000; u <= 99009; u++) constants.push(u);
    expect([...OPENCANARY_LOGTYPES.keys()].sort((a, b) => a - b)).toEqual(constants);
  });
});

describe("OpenCanary credentials", () => {
  it.each([
    [2000, { USERNAME: "ftpuser", PASSWORD: "ftpPa55w0rd" }, { password: "ftpPa55w0rd" }],
    [3001, { HOSTNAME: "nas", PATH: "/index.html", SKIN: "nasLogin", USERAGENT: "curl", USERNAME: "admin", PASSWORD: "httpPa55" }, { password: "httpPa55" }],
    [4002, { LOCALVERSION: "SSH-2.0-OpenSSH_5.1p1 Debian-5", PASSWORD: "sshPa55", REMOTEVERSION: "SSH-2.0-libssh2_1.9.0", USERNAME: "root" }, { password: "sshPa55" }],
    [6001, { PASSWORD: "telnetPa55", USERNAME: "admin" }, { password: "telnetPa55" }],
    [8001, { PASSWORD: "mysqlPa55", USERNAME: "root" }, { password: "mysqlPa55" }],
    [9001, { AppName: "sqlcmd", HostName: "ws1", Password: "mssqlPa55", UserName: "sa" }, { password: "mssqlPa55" }],
    [12001, { "VNC Client Response": "00112233445566778899aabbccddeeff", "VNC Password": "password", "VNC Server Challenge": "ffeeddccbbaa99887766554433221100" }, { vnc_client_response: "00112233445566778899aabbccddeeff", vnc_password: "password" }],
    [17001, { ARGS: "r3disPa55", CMD: "AUTH" }, { password: "r3disPa55" }],
  ])("logtype %i", (logtype, logdata, secrets) => {
    const text = line(logtype, logdata);
    for (const body of [text, JSON.stringify({ message: text })]) {
      const r = fromOpenCanary(JSON.parse(body), body);
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      const ev = r.event;
      expect(ev.secrets).toEqual(secrets);
      expect(ev.rawOriginal).toBe(text);
      for (const v of Object.values(secrets)) {
        expect(ev.raw).not.toContain(v);
        expect(JSON.stringify(ev.payload)).not.toContain(v);
      }
      const stored = JSON.parse(ev.raw) as { logdata: Record<string, unknown> };
      for (const key of Object.keys(logdata)) if (!Object.keys(secrets).length || !/pass|response|ARGS/i.test(key)) expect(stored.logdata[key]).toEqual((logdata as Record<string, unknown>)[key]);
      expect(Object.values(stored.logdata)).toContain(REDACTED);
      if (ev.eventType === "auth_attempt") expect(ev.payload.outcome).toBe("failed");
      const user = (logdata as Record<string, string>).USERNAME ?? (logdata as Record<string, string>).UserName;
      if (user) expect(ev.payload.username).toBe(user);
    }
  });

  it("keeps the remote SSH version and ordinary Redis commands", () => {
    expect(ok(line(4001, { LOCALVERSION: "a", REMOTEVERSION: "SSH-2.0-Go" })).payload.client_version).toBe("SSH-2.0-Go");
    const redis = ok(line(17001, { ARGS: "*", CMD: "KEYS" }));
    expect(redis).toMatchObject({ eventType: "command", secrets: {}, payload: { command: "KEYS *" } });
  });
});

describe("OpenCanary webhook bodies and rejections", () => {
  it("accepts a message prefixed by a custom log format", () => {
    const text = line(4000, { SESSION: "7" });
    const ev = ok(JSON.stringify({ message: `2026-01-01 12:00:00,123 ${text}` }));
    expect(ev).toMatchObject({ eventType: "connection", rawOriginal: text, payload: { session: "7" } });
  });

  it("keeps OpenCanary's own messages (no remote party) with the unspecified address", () => {
    const ev = ok(line(1001, { msg: { logdata: "Canary running!!!" } }, { src_host: "", src_port: -1, dst_host: "", dst_port: -1 }));
    expect(ev).toMatchObject({ sourceIp: "0.0.0.0", eventType: "other" });
    expect(ev.payload.src_port).toBeUndefined();
  });

  it("rejects an attack event without a valid src_host, and bodies that are not alerts", () => {
    for (const src of ["", "nope", "300.1.1.1"]) {
      const text = line(4002, { USERNAME: "a", PASSWORD: "b" }, { src_host: src });
      expect(fromOpenCanary(JSON.parse(text), text)).toMatchObject({ ok: false, path: "src_host", code: "EVENT_INVALID_SOURCE_IP" });
    }
    expect(fromOpenCanary({ message: "no json here" }, "")).toMatchObject({ ok: false, path: "message" });
    expect(fromOpenCanary({ message: "{broken" }, "")).toMatchObject({ ok: false, path: "message" });
    expect(fromOpenCanary("x", '"x"')).toMatchObject({ ok: false, code: "EVENT_NOT_AN_OBJECT" });
  });
});

describe("OpenCanary nested credentials", () => {
  const headers = {
    Accept: "*/*",
    Authorization: "Basic YWRtaW46aGRyUGE1NQ==",
    Cookie: "sessionid=c00k1eS3ss; csrftoken=abc",
    "User-Agent": "Mozilla/5.0",
  };
  const logdata = { HEADERS: headers, HOSTNAME: "nas", PASSWORD: "httpPa55", PATH: "/index.html", SKIN: "nasLogin", USERAGENT: "Mozilla/5.0", USERNAME: "admin" };

  it("moves Authorization and Cookie out of an HTTP login's (3001) HEADERS; the rest of raw stays byte for byte", () => {
    const text = line(3001, logdata, { dst_port: 80 });
    for (const body of [text, JSON.stringify({ message: text })]) {
      const r = fromOpenCanary(JSON.parse(body), body);
      if (!r.ok) throw new Error(r.reason);
      const ev = r.event;
      expect(ev.secrets).toEqual({ password: "httpPa55", "headers.authorization": headers.Authorization, "headers.cookie": headers.Cookie });
      expect(ev.payload).toMatchObject({ protocol: "http", username: "admin", outcome: "failed" });
      expect((ev.payload.details as { logdata: Record<string, unknown> }).logdata.HEADERS).toEqual({ Accept: "*/*", "User-Agent": "Mozilla/5.0" });
      for (const v of Object.values(ev.secrets)) {
        expect(ev.raw).not.toContain(v);
        expect(JSON.stringify(ev.payload)).not.toContain(v);
      }
      const redacted = JSON.stringify(REDACTED);
      expect(ev.raw).toBe(
        text
          .replace(JSON.stringify(headers.Authorization), redacted)
          .replace(JSON.stringify(headers.Cookie), redacted)
          .replace(JSON.stringify(logdata.PASSWORD), redacted),
      );
      expect(ev.rawOriginal).toBe(text);
    }
  });

  it("finds header names in any case and credentials at any depth, also outside logdata", () => {
    const text = line(
      3000,
      { HEADERS: { "proxy-authorization": "Basic cHJveHk6cHc=", "SET-COOKIE": "sid=s3tC00k", "x-api-key": "k3y-v4l", "X-Auth-Token": "t0k3n", "X-Registry-Auth": "r3g", Host: "nas" }, PATH: "/" },
      { extra: { client: [{ auth: { password: "d33p" } }, { note: "curl -u u:inl1ne http://x" }] } },
    );
    const ev = ok(text);
    expect(ev.secrets).toEqual({
      "headers.proxy_authorization": "Basic cHJveHk6cHc=",
      "headers.set_cookie": "sid=s3tC00k",
      "headers.x_api_key": "k3y-v4l",
      "headers.x_auth_token": "t0k3n",
      "headers.x_registry_auth": "r3g",
      "extra.client.0.auth": '{"password":"d33p"}',
      "extra.client.1.note.basic_auth": "inl1ne",
    });
    const stored = JSON.parse(ev.raw) as { logdata: { HEADERS: Record<string, string> }; extra: { client: [{ auth: string }, { note: string }] } };
    expect(stored.logdata.HEADERS).toEqual({ "proxy-authorization": REDACTED, "SET-COOKIE": REDACTED, "x-api-key": REDACTED, "X-Auth-Token": REDACTED, "X-Registry-Auth": REDACTED, Host: "nas" });
    expect(stored.extra.client).toEqual([{ auth: REDACTED }, { note: `curl -u u:${REDACTED} http://x` }]);
    expect(ev.payload.details).toMatchObject({ extra: { client: [{}, { note: `curl -u u:${REDACTED} http://x` }] }, logdata: { HEADERS: { Host: "nas" } } });
    for (const v of Object.values(ev.secrets)) expect(ev.raw + JSON.stringify(ev.payload)).not.toContain(v === '{"password":"d33p"}' ? "d33p" : v);
  });

  it("refuses logdata nested deeper than 32 levels with the field's path, without exhausting the stack", () => {
    let deep: unknown = { Authorization: "Bearer x" };
    for (let i = 0; i < 40; i++) deep = { d: deep };
    expect(fromOpenCanary(JSON.parse(line(3000, { HEADERS: deep })), line(3000, { HEADERS: deep }))).toMatchObject({ ok: false, code: "EVENT_INVALID_FIELD", path: "logdata.HEADERS" });
    const huge = `{"logtype": 3000, "src_host": "198.51.100.23", "logdata": {"HEADERS": ${"[".repeat(100_000)}${"]".repeat(100_000)}}}`;
    const r = fromOpenCanary(JSON.parse(huge), huge);
    expect(r).toMatchObject({ ok: false, code: "EVENT_INVALID_FIELD", path: "logdata.HEADERS" });
    if (!r.ok) expect(r.reason).toContain("deeper than 32 levels");
  });
});
