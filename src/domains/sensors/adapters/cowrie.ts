// Cowrie (SSH/Telnet honeypot) events to normalised events: a JSON log line, or the same event
// wrapped as Cowrie's Splunk HEC output sends it ({"host": ..., "event": {...}}). Unknown eventids
// are kept as "other", never dropped. Passwords, secret-named fields at any depth (a nested header
// map's Authorization, {"auth": {...}}) and credentials typed into commands move to `secrets`; the
// payload and the raw text keep only "[redacted]" in their place (redact.ts cleanValue).
//
// cowrie.direct-tcpip.* is the attacker using the honeypot's SSH port forwarding as a relay to
// third parties. It is "exploitation" (abuse of the service), not "scan": the ports are other
// hosts' ports, and counting them as scan events would let port-scan detection fire on a relay.
import { pathKey, rewriteJsonValues } from "./json-text.ts";
import { addSecret, cleanMember, cleanValue, isSecretFieldName, isSecretValue, NestingTooDeep, redactText, scrubValues, secretName, secretText, type TreeContext } from "./redact.ts";
import { ADAPTER_CODES, canonicalIp, REDACTED, isPlainObject, reject, setOwn, type AdapterResult, type EventType } from "./types.ts";

export const cowrieEventType = (eventid: string | null): EventType => {
  if (eventid === null) return "other";
  if (eventid === "cowrie.session.connect") return "connection";
  if (eventid === "cowrie.login.failed" || eventid === "cowrie.login.success") return "auth_attempt";
  if (eventid === "cowrie.command.input" || eventid === "cowrie.command.failed") return "command";
  if (eventid.startsWith("cowrie.session.file_download") || eventid.startsWith("cowrie.session.file_upload")) return "exploitation";
  if (eventid.startsWith("cowrie.direct-tcpip.")) return "exploitation";
  if (eventid.startsWith("cowrie.client.") || eventid.startsWith("cowrie.log.") || eventid === "cowrie.session.closed" || eventid === "cowrie.session.params")
    return "session";
  return "other";
};

const cowrieThreat = (eventid: string | null, type: EventType): string | null => {
  if (type === "command") return "command_execution";
  if (eventid !== null && (eventid.startsWith("cowrie.session.file_download") || eventid.startsWith("cowrie.session.file_upload"))) return "malware_download";
  return null;
};

// Fields that become named payload fields (or are the event's identity/time) rather than details.
const CONSUMED = new Set(["eventid", "src_ip", "timestamp", "password", "protocol", "src_port", "dst_ip", "dst_port", "session", "username", "message", "input", "url", "shasum", "filename"]);

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const port = (v: unknown): number | undefined => (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 65535 ? v : undefined);

const occurredAt = (event: Record<string, unknown>, envelope: Record<string, unknown> | null): Date | null => {
  const ts = event.timestamp;
  if (typeof ts === "string") {
    const t = Date.parse(ts);
    if (Number.isFinite(t)) return new Date(t);
  }
  // HEC "time": epoch seconds, as a number or numeric string.
  const time = envelope?.time;
  const seconds = typeof time === "number" ? time : typeof time === "string" && /^\d+(\.\d+)?$/.test(time) ? Number(time) : NaN;
  return Number.isFinite(seconds) && seconds > 0 ? new Date(Math.round(seconds * 1000)) : null;
};

type Context = { prefix: string; secrets: Record<string, string>; raw: Map<string, string> };

// Module-level helpers taking a context (not closures made per event: this runs per ingested line).
function replaceInRaw(ctx: Context, field: string, text: string): void {
  ctx.raw.set(ctx.prefix + field, text);
}

/** Credentials typed into commands, URLs and forwarded data: the value goes to secrets, the text keeps [redacted]. */
function redactField(ctx: Context, field: string, text: string): string {
  const { text: redacted, found } = redactText(text);
  if (found.length === 0) return text;
  for (const f of found) addSecret(ctx.secrets, `${field === "input" ? "command" : field}.${f.kind}`, f.value);
  replaceInRaw(ctx, field, redacted);
  return redacted;
}

export const fromCowrie = (value: unknown, rawText: string): AdapterResult => {
  if (!isPlainObject(value)) return reject(ADAPTER_CODES.NOT_AN_OBJECT, "", "a Cowrie event is a JSON object");
  const wrapped = isPlainObject(value.event) && value.eventid === undefined;
  const event = wrapped ? (value.event as Record<string, unknown>) : value;
  const envelope = wrapped ? value : null;

  const srcText = str(event.src_ip);
  if (srcText === undefined) return reject(ADAPTER_CODES.INVALID_SOURCE_IP, "src_ip", "src_ip is missing or not a string");
  const sourceIp = canonicalIp(srcText);
  if (sourceIp === null) return reject(ADAPTER_CODES.INVALID_SOURCE_IP, "src_ip", `src_ip is not an IP address: ${JSON.stringify(srcText.slice(0, 64))}`);

  const eventid = str(event.eventid) ?? null;
  const eventType = cowrieEventType(eventid);
  const secrets: Record<string, string> = {};
  const rawReplacements = new Map<string, string>();
  const ctx: Context = { prefix: wrapped ? pathKey(["event", ""]) : "", secrets, raw: rawReplacements };

  const payload: Record<string, unknown> = {};
  if (eventid !== null) payload.sensor_event = eventid;
  const protocol = str(event.protocol);
  if (protocol !== undefined) payload.protocol = protocol;
  const srcPort = port(event.src_port);
  if (srcPort !== undefined) payload.src_port = srcPort;
  const dstIp = str(event.dst_ip);
  if (dstIp !== undefined) payload.dst_ip = canonicalIp(dstIp) ?? dstIp;
  const dstPort = port(event.dst_port);
  if (dstPort !== undefined) payload.dst_port = dstPort;
  const session = str(event.session);
  if (session !== undefined) payload.session = session;
  const username = str(event.username);
  if (username !== undefined) payload.username = username;
  if (eventid === "cowrie.login.success") payload.outcome = "success";
  else if (eventid === "cowrie.login.failed") payload.outcome = "failed";

  let password: string | undefined;
  if (event.password !== undefined && event.password !== null) {
    password = secretText(event.password);
    addSecret(secrets, "password", password);
    replaceInRaw(ctx, "password", REDACTED);
  }
  const input = str(event.input);
  if (input !== undefined) payload.command = redactField(ctx, "input", input);
  const url = str(event.url);
  if (url !== undefined) payload.url = redactField(ctx, "url", url);
  const shasum = str(event.shasum);
  if (shasum !== undefined) payload.shasum = shasum;
  const filename = str(event.filename) ?? str(event.destfile);
  if (filename !== undefined) payload.filename = filename;
  if (eventid === "cowrie.client.version" && typeof event.version === "string") payload.client_version = event.version;

  const details: Record<string, unknown> = {};
  // Nested objects and arrays (kex algorithm lists, a header map, {"auth": {...}}) go through the
  // shared walk; scalars stay on this loop's cheap path.
  let tree: TreeContext | undefined;
  for (const [key, v] of Object.entries(event)) {
    if (CONSUMED.has(key)) continue;
    if (key === "version" && payload.client_version !== undefined) continue;
    if (isSecretFieldName(key) && isSecretValue(v)) {
      addSecret(secrets, secretName(key), secretText(v));
      replaceInRaw(ctx, key, REDACTED);
      continue;
    }
    if (typeof v === "string") setOwn(details, key, redactField(ctx, key, v));
    else if (typeof v !== "object" || v === null) setOwn(details, key, v);
    else {
      tree ??= { secrets, raw: rawReplacements, rawRoot: wrapped ? ["event"] : [], secretRoot: [], path: [] };
      try {
        setOwn(details, key, cleanMember(key, v, tree));
      } catch (err) {
        if (err instanceof NestingTooDeep) return reject(ADAPTER_CODES.INVALID_FIELD, err.field, `${err.field.slice(0, 80)} ${err.message}`);
        throw err;
      }
    }
  }
  // cowrie.client.var: an environment variable such as AWS_SECRET_ACCESS_KEY=... sent by the client.
  if (eventid === "cowrie.client.var" && typeof event.name === "string" && isSecretFieldName(event.name) && event.value !== undefined && event.value !== null) {
    addSecret(secrets, `env.${event.name}`, secretText(event.value));
    details.value = REDACTED;
    replaceInRaw(ctx, "value", REDACTED);
  }

  const message = str(event.message);
  if (message !== undefined) {
    let m = message;
    if (password !== undefined && password !== "") {
      // "login attempt [user/pass] failed" (older Cowrie) or "[b'user'/b'pass']" (bytes repr).
      const plain = `[${username ?? ""}/${password}]`;
      const bytes = `[b'${username ?? ""}'/b'${password}']`;
      if (m.includes(plain)) m = m.split(plain).join(`[${username ?? ""}/${REDACTED}]`);
      else if (m.includes(bytes)) m = m.split(bytes).join(`[b'${username ?? ""}'/b'${REDACTED}']`);
      else m = scrubValues(m, [password]);
    }
    m = redactText(m).text;
    // Whatever the message echoes of a secret found elsewhere (the command line after "CMD: ").
    m = scrubValues(m, Object.entries(secrets).filter(([name]) => name !== "password").map(([, v]) => v));
    payload.message = m;
    if (m !== message) replaceInRaw(ctx, "message", m);
  }
  if (envelope) {
    const fields: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(envelope)) if (key !== "event") setOwn(fields, key, v);
    if (Object.keys(fields).length) {
      try {
        details.hec = cleanValue(fields, { secrets, raw: rawReplacements, rawRoot: [], secretRoot: ["hec"], path: [] });
      } catch (err) {
        if (err instanceof NestingTooDeep) return reject(ADAPTER_CODES.INVALID_FIELD, err.field, `${err.field.slice(0, 80)} ${err.message}`);
        throw err;
      }
    }
  }
  if (Object.keys(details).length) payload.details = details;

  return {
    ok: true,
    event: {
      eventId: null,
      sourceIp,
      eventType,
      detectedThreat: cowrieThreat(eventid, eventType),
      occurredAt: occurredAt(event, envelope),
      payload,
      secrets,
      raw: rewriteJsonValues(rawText, rawReplacements),
      rawOriginal: rawText,
    },
  };
};
