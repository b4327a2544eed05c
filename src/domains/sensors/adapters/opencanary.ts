// OpenCanary alerts to normalised events: a log line as OpenCanary writes it, or its webhook body
// ({"message": "<log line>"}). The logtype codes are OpenCanary's LoggerBase.LOG_* constants
// (opencanary/logger.py); unknown codes are kept as "other". Credentials in logdata (PASSWORD,
// Password, "VNC Password", a Redis AUTH argument, HEADERS' Authorization and Cookie, any
// secret-named key at any depth) move to `secrets`.
//
// OpenCanary never lets a login succeed, so every login attempt has outcome "failed". Its own
// messages (1000-1006: boot, ping, config saved ...) name no remote party: their source is the
// unspecified address 0.0.0.0, which keeps them stored without inventing an attacker.
import { pathKey, rewriteJsonValues } from "./json-text.ts";
import { addSecret, cleanMember, cleanValue, isSecretFieldName, isSecretValue, NestingTooDeep, redactText, secretName, secretText, type TreeContext } from "./redact.ts";
import { ADAPTER_CODES, canonicalIp, REDACTED, isPlainObject, reject, setOwn, type AdapterResult, type EventType } from "./types.ts";

type Kind = { type: EventType; protocol: string };

const range = (from: number, to: number, kind: Kind): [number, Kind][] => Array.from({ length: to - from + 1 }, (_, i) => [from + i, kind]);

/** logtype -> our type and the protocol it concerns. */
export const OPENCANARY_LOGTYPES: ReadonlyMap<number, Kind> = new Map<number, Kind>([
  ...range(1000, 1006, { type: "other", protocol: "opencanary" }), // boot, msg, debug, error, ping, config save, example
  [2000, { type: "auth_attempt", protocol: "ftp" }], // FTP login attempt
  [3000, { type: "connection", protocol: "http" }], // HTTP GET
  [3001, { type: "auth_attempt", protocol: "http" }], // HTTP POST login attempt
  [4000, { type: "connection", protocol: "ssh" }], // SSH new connection
  [4001, { type: "session", protocol: "ssh" }], // SSH remote version sent
  [4002, { type: "auth_attempt", protocol: "ssh" }], // SSH login attempt
  [5000, { type: "session", protocol: "smb" }], // SMB file open (a file on the canary share was read)
  ...range(5001, 5005, { type: "scan", protocol: "tcp" }), // SYN, nmap OS, NULL, XMAS, FIN scans
  [6001, { type: "auth_attempt", protocol: "telnet" }], // telnet login attempt
  [7001, { type: "auth_attempt", protocol: "httpproxy" }], // HTTP proxy login attempt
  [8001, { type: "auth_attempt", protocol: "mysql" }], // MySQL login attempt
  [9001, { type: "auth_attempt", protocol: "mssql" }], // MSSQL SQL auth
  [9002, { type: "auth_attempt", protocol: "mssql" }], // MSSQL Windows auth
  [10001, { type: "connection", protocol: "tftp" }], // TFTP request
  [11001, { type: "scan", protocol: "ntp" }], // NTP monlist (amplification reconnaissance)
  [12001, { type: "auth_attempt", protocol: "vnc" }], // VNC authentication
  [13001, { type: "scan", protocol: "snmp" }], // SNMP command (community sweeps)
  [14001, { type: "connection", protocol: "rdp" }], // RDP connection
  [15001, { type: "connection", protocol: "sip" }], // SIP request
  [16001, { type: "connection", protocol: "git" }], // git clone request
  [17001, { type: "command", protocol: "redis" }], // Redis command
  [18001, { type: "connection", protocol: "tcpbanner" }], // TCP banner: connection made
  [18002, { type: "connection", protocol: "tcpbanner" }], // keep-alive connection made
  [18003, { type: "session", protocol: "tcpbanner" }], // keep-alive secret received
  [18004, { type: "session", protocol: "tcpbanner" }], // keep-alive data received
  [18005, { type: "session", protocol: "tcpbanner" }], // data received
  ...range(99000, 99009, { type: "other", protocol: "user" }), // user-defined modules
]);

const UNSPECIFIED = "0.0.0.0";

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const port = (v: unknown): number | undefined => (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 65535 ? v : undefined);

const logtypeOf = (v: unknown): number | null => {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "string" && /^\d{1,6}$/.test(v)) return Number(v);
  return null;
};

// "2024-01-02 03:04:05.678901" in UTC (OpenCanary's utc_time).
const parseUtcTime = (v: unknown): Date | null => {
  if (typeof v !== "string" || !/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?$/.test(v)) return null;
  const t = Date.parse(`${v.replace(" ", "T")}Z`);
  return Number.isFinite(t) ? new Date(t) : null;
};

/** The webhook wraps the line in {"message": ...}; a custom log format may prefix it with text. */
const unwrap = (value: Record<string, unknown>, rawText: string): { line: Record<string, unknown>; text: string } | AdapterResult => {
  if (value.logtype !== undefined || typeof value.message !== "string") return { line: value, text: rawText };
  const message = value.message;
  const brace = message.indexOf("{");
  if (brace < 0) return reject(ADAPTER_CODES.INVALID_FIELD, "message", "message does not contain an OpenCanary JSON log line");
  const text = message.slice(brace).trimEnd();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return reject(ADAPTER_CODES.INVALID_FIELD, "message", `message is not a JSON log line: ${(err as Error).message}`);
  }
  if (!isPlainObject(parsed)) return reject(ADAPTER_CODES.NOT_AN_OBJECT, "message", "the log line in message is not a JSON object");
  return { line: parsed, text };
};

const CONSUMED = new Set(["src_host", "src_port", "dst_host", "dst_port", "logtype", "logdata", "node_id", "utc_time"]);
const USERNAME_KEYS = ["USERNAME", "UserName", "username", "user"];

export const fromOpenCanary = (value: unknown, rawText: string): AdapterResult => {
  try {
    return normalise(value, rawText);
  } catch (err) {
    if (err instanceof NestingTooDeep) return reject(ADAPTER_CODES.INVALID_FIELD, err.field, `${err.field.slice(0, 80)} ${err.message}`);
    throw err;
  }
};

/** Where nested values are cleaned: rawRoot says where they sit in the line's text. */
const tree = (secrets: Record<string, string>, raw: Map<string, string>, rawRoot: string[], secretRoot: string[] = []): TreeContext => ({ secrets, raw, rawRoot, secretRoot, path: [] });

const normalise = (value: unknown, rawText: string): AdapterResult => {
  if (!isPlainObject(value)) return reject(ADAPTER_CODES.NOT_AN_OBJECT, "", "an OpenCanary alert is a JSON object");
  const unwrapped = unwrap(value, rawText);
  if ("ok" in unwrapped) return unwrapped;
  const { line, text } = unwrapped;

  const logtype = logtypeOf(line.logtype);
  const kind = logtype === null ? undefined : OPENCANARY_LOGTYPES.get(logtype);
  const eventType: EventType = kind?.type ?? "other";

  const srcHost = str(line.src_host) ?? "";
  let sourceIp = canonicalIp(srcHost);
  if (sourceIp === null) {
    const internal = logtype !== null && logtype >= 1000 && logtype < 2000;
    if (!(internal && srcHost === "")) return reject(ADAPTER_CODES.INVALID_SOURCE_IP, "src_host", `src_host is not an IP address: ${JSON.stringify(srcHost.slice(0, 64))}`);
    sourceIp = UNSPECIFIED;
  }

  const secrets: Record<string, string> = {};
  const rawReplacements = new Map<string, string>();
  const payload: Record<string, unknown> = { sensor_event: `opencanary:${logtype ?? "unknown"}` };
  if (kind) payload.protocol = kind.protocol;
  const srcPort = port(line.src_port);
  if (srcPort !== undefined) payload.src_port = srcPort;
  const dstHost = str(line.dst_host);
  if (dstHost) payload.dst_ip = canonicalIp(dstHost) ?? dstHost;
  const dstPort = port(line.dst_port);
  if (dstPort !== undefined) payload.dst_port = dstPort;
  const nodeId = str(line.node_id);
  if (nodeId !== undefined) payload.node_id = nodeId;

  const details: Record<string, unknown> = {};
  const logdata = line.logdata;
  if (isPlainObject(logdata)) {
    const rest: Record<string, unknown> = {};
    // Nested values (HTTP HEADERS, 1001's {"msg": {...}}) go through the shared walk; scalars stay here.
    let nested: TreeContext | undefined;
    const isRedisAuth = logtype === 17001 && typeof logdata.CMD === "string" && logdata.CMD.toUpperCase() === "AUTH";
    for (const [key, v] of Object.entries(logdata)) {
      const path = pathKey(["logdata", key]);
      if (USERNAME_KEYS.includes(key) && typeof v === "string" && payload.username === undefined) {
        payload.username = v;
        continue;
      }
      if ((isRedisAuth && key === "ARGS" && v !== null && v !== undefined) || (isSecretFieldName(key) && isSecretValue(v))) {
        addSecret(secrets, isRedisAuth && key === "ARGS" ? "password" : secretName(key), secretText(v));
        rawReplacements.set(path, REDACTED);
        continue;
      }
      if (typeof v === "string") {
        const { text: redacted, found } = redactText(v);
        for (const f of found) addSecret(secrets, `${secretName(key)}.${f.kind}`, f.value);
        if (redacted !== v) rawReplacements.set(path, redacted);
        setOwn(rest, key, redacted);
      } else if (typeof v === "object" && v !== null) {
        nested ??= tree(secrets, rawReplacements, ["logdata"]);
        setOwn(rest, key, cleanMember(key, v, nested));
      } else setOwn(rest, key, v);
    }
    if (typeof rest.REMOTEVERSION === "string") payload.client_version = rest.REMOTEVERSION;
    if (typeof rest.SESSION === "string") payload.session = rest.SESSION;
    if (logtype === 17001 && typeof rest.CMD === "string") payload.command = isRedisAuth ? `${rest.CMD} ${REDACTED}` : [rest.CMD, rest.ARGS].filter((p) => typeof p === "string" && p !== "").join(" ");
    if (typeof rest.PATH === "string") payload.url = rest.PATH;
    if (typeof rest.FILENAME === "string") payload.filename = rest.FILENAME;
    if (Object.keys(rest).length) details.logdata = rest;
  } else if (logdata !== undefined) {
    details.logdata = cleanValue(logdata, tree(secrets, rawReplacements, ["logdata"], ["logdata"]));
  }
  if (eventType === "auth_attempt") payload.outcome = "failed";
  let top: TreeContext | undefined;
  for (const [key, v] of Object.entries(line)) {
    if (CONSUMED.has(key)) continue;
    if (isSecretFieldName(key) && isSecretValue(v)) {
      addSecret(secrets, secretName(key), secretText(v));
      rawReplacements.set(pathKey([key]), REDACTED);
    } else if (typeof v === "object" && v !== null) {
      top ??= tree(secrets, rawReplacements, []);
      setOwn(details, key, cleanMember(key, v, top));
    } else setOwn(details, key, v);
  }
  if (Object.keys(details).length) payload.details = details;

  return {
    ok: true,
    event: {
      eventId: null,
      sourceIp,
      eventType,
      detectedThreat: null,
      occurredAt: parseUtcTime(line.utc_time),
      payload,
      secrets,
      raw: rewriteJsonValues(text, rawReplacements),
      rawOriginal: text,
    },
  };
};
