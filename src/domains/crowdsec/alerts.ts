// CrowdSec alerts as Portcullis sees them: the pushed JSON read the way CrowdSec's Go server reads
// it (field names match case-insensitively: agents send "Events" or "events"), checked against the
// contract's required fields, and turned into sensor-style events (one per alert event, or one for
// the alert when it lists none) and the input of a block proposal for its source.
import { createHash } from "node:crypto";
import { normalizeCidr, normalizeIp } from "../../lib/ip.ts";
import type { EventType, NormalizedEvent } from "../sensors/adapters/types.ts";

export type CrowdsecDecisionIn = { duration?: string; origin?: string; scenario?: string; scope?: string; value?: string; type?: string };
export type Alert = {
  scenario: string;
  scenario_hash: string;
  scenario_version: string;
  message: string;
  events_count: number;
  start_at: string;
  stop_at: string;
  capacity: number;
  leakspeed: string;
  simulated: boolean;
  events: { timestamp: string; meta: { key: string; value: string }[] }[];
  source: { scope: string; value: string; ip?: string; range?: string; as_number?: string; as_name?: string; cn?: string; latitude?: number; longitude?: number };
  decisions: CrowdsecDecisionIn[];
  meta: { key: string; value: string }[];
  labels: string[];
  remediation?: boolean;
  kind?: string;
};

const ALERT_FIELDS = [
  "id", "uuid", "machine_id", "created_at", "scenario", "scenario_hash", "scenario_version", "message", "events_count", "start_at", "stop_at",
  "capacity", "leakspeed", "simulated", "events", "remediation", "decisions", "source", "meta", "labels", "kind",
];
const REQUIRED = ["scenario", "scenario_hash", "scenario_version", "message", "events_count", "start_at", "stop_at", "capacity", "leakspeed", "simulated", "events", "source"];
const SOURCE_FIELDS = ["scope", "value", "ip", "range", "as_number", "as_name", "cn", "latitude", "longitude"];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Keys renamed to the canonical (lower-case) names Go would decode into; unknown keys dropped. */
const canonicalKeys = (value: Record<string, unknown>, known: readonly string[]): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    const name = known.find((k) => k === key.toLowerCase());
    if (name && !(name in out && key !== name)) out[name] = inner;
  }
  return out;
};

const text = (v: unknown) => typeof v === "string";
const integer = (v: unknown) => typeof v === "number" && Number.isInteger(v);

export type AlertCheck = { ok: true; alert: Alert } | { ok: false; path: string; message: string };

/** Reads one pushed alert; `at` is its index in the array (for error paths). */
export const readAlert = (value: unknown, at: number): AlertCheck => {
  const fail = (path: string, message: string): AlertCheck => ({ ok: false, path: `[${at}].${path}`, message });
  if (!isObject(value)) return { ok: false, path: `[${at}]`, message: "an alert is a JSON object" };
  const a = canonicalKeys(value, ALERT_FIELDS);
  for (const field of REQUIRED) if (a[field] === undefined || a[field] === null) return fail(field, `${field} in body is required`);
  for (const field of ["scenario", "scenario_hash", "scenario_version", "message", "start_at", "stop_at", "leakspeed"]) if (!text(a[field])) return fail(field, "must be a string");
  for (const field of ["events_count", "capacity"]) if (!integer(a[field])) return fail(field, "must be an integer");
  if (typeof a.simulated !== "boolean") return fail("simulated", "must be a boolean");
  if (!Array.isArray(a.events)) return fail("events", "must be an array");
  const events: Alert["events"] = [];
  for (const [i, ev] of (a.events as unknown[]).entries()) {
    if (!isObject(ev)) return fail(`events[${i}]`, "must be an object");
    const e = canonicalKeys(ev, ["timestamp", "meta"]);
    if (!text(e.timestamp)) return fail(`events[${i}].timestamp`, "timestamp in body is required");
    const meta = readMeta(e.meta);
    if (meta === undefined) return fail(`events[${i}].meta`, "meta in body is required (an array of {key, value})");
    events.push({ timestamp: e.timestamp as string, meta });
  }
  if (!isObject(a.source)) return fail("source", "must be an object");
  const source = canonicalKeys(a.source, SOURCE_FIELDS) as Alert["source"];
  if (!text(source.scope)) return fail("source.scope", "scope in body is required");
  if (!text(source.value)) return fail("source.value", "value in body is required");
  const decisions: CrowdsecDecisionIn[] = [];
  if (a.decisions !== undefined && a.decisions !== null) {
    if (!Array.isArray(a.decisions)) return fail("decisions", "must be an array");
    for (const [i, d] of (a.decisions as unknown[]).entries()) {
      if (!isObject(d)) return fail(`decisions[${i}]`, "must be an object");
      decisions.push(canonicalKeys(d, ["duration", "origin", "scenario", "scope", "value", "type", "until"]) as CrowdsecDecisionIn);
    }
  }
  const meta = a.meta === undefined || a.meta === null ? [] : readMeta(a.meta);
  if (meta === undefined) return fail("meta", "must be an array of {key, value}");
  const labels = Array.isArray(a.labels) ? (a.labels as unknown[]).filter(text).map(String) : [];
  return {
    ok: true,
    alert: {
      scenario: a.scenario as string,
      scenario_hash: a.scenario_hash as string,
      scenario_version: a.scenario_version as string,
      message: a.message as string,
      events_count: a.events_count as number,
      start_at: a.start_at as string,
      stop_at: a.stop_at as string,
      capacity: a.capacity as number,
      leakspeed: a.leakspeed as string,
      simulated: a.simulated as boolean,
      events,
      source,
      decisions,
      meta,
      labels,
      ...(typeof a.remediation === "boolean" ? { remediation: a.remediation } : {}),
      ...(text(a.kind) ? { kind: a.kind as string } : {}),
    },
  };
};

const readMeta = (value: unknown): { key: string; value: string }[] | undefined => {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) return undefined;
  const out: { key: string; value: string }[] = [];
  for (const item of value) {
    if (!isObject(item)) return undefined;
    const m = canonicalKeys(item, ["key", "value"]);
    out.push({ key: String(m.key ?? ""), value: String(m.value ?? "") });
  }
  return out;
};

/** The alert's source as an IP (scope ip, or its ip field), or null (ranges, usernames ...). */
export const sourceIpOf = (alert: Alert): string | null => {
  const candidates = [alert.source.scope.toLowerCase() === "ip" ? alert.source.value : undefined, alert.source.ip];
  for (const c of candidates) if (c) {
    const ip = normalizeIp(c);
    if (ip) return ip;
  }
  return null;
};

/** The range a Range-scoped alert names, canonical, or null. */
export const sourceRangeOf = (alert: Alert): string | null =>
  alert.source.scope.toLowerCase() === "range" ? (normalizeCidr(alert.source.value)?.text ?? null) : null;

/** What kind of event a scenario reports, from its name (CrowdSec's hub naming). */
export const eventTypeOf = (scenario: string): EventType => {
  const s = scenario.toLowerCase();
  if (/(^|[/_-])(bf|brute|bruteforce|password|auth|login)([/_-]|$)/.test(s) || /-bf$|_bf$|bf$/.test(s)) return "auth_attempt";
  // fail2ban bans after repeated failures (the documented action sends "fail2ban/<jail>").
  if (s.startsWith("fail2ban/")) return "auth_attempt";
  if (/scan|probing|crawl|enum/.test(s)) return "scan";
  if (/cve|exploit|rce|sqli|xss|lfi|rfi|injection|traversal|backdoor|shell/.test(s)) return "exploitation";
  return "other";
};

const metaObject = (meta: { key: string; value: string }[]) => Object.fromEntries(meta.map((m) => [m.key, m.value]));

/** The alert's events as sensor events. `alertKey` (hash of the pushed JSON) makes retried pushes duplicates. */
export const alertEvents = (alert: Alert, rawText: string, machineId: string, alertId: number, now: Date): NormalizedEvent[] => {
  const sourceIp = sourceIpOf(alert);
  if (!sourceIp) return [];
  const alertKey = createHash("sha256").update(rawText).digest("hex").slice(0, 32);
  const eventType = eventTypeOf(alert.scenario);
  const time = (s: string) => {
    const d = new Date(s);
    // Not after now (a clock ahead on the agent): the server's time instead.
    return Number.isNaN(d.getTime()) || d.getTime() > now.getTime() + 5 * 60_000 ? null : d;
  };
  const base = {
    sensor_event: "crowdsec:alert",
    message: alert.message,
    scenario: alert.scenario,
  };
  const common = { alert_id: alertId, machine_id: machineId, scenario_version: alert.scenario_version, events_count: alert.events_count, source: alert.source, labels: alert.labels };
  const items = alert.events.length ? alert.events : [{ timestamp: alert.start_at, meta: alert.meta }];
  return items.map((ev, i) => {
    const raw = JSON.stringify({ alert_id: alertId, scenario: alert.scenario, timestamp: ev.timestamp, meta: ev.meta });
    return {
      eventId: `crowdsec:${alertKey}:${i}`,
      sourceIp,
      eventType,
      detectedThreat: alert.scenario,
      occurredAt: time(ev.timestamp),
      payload: { ...base, details: { ...common, meta: metaObject(ev.meta) } },
      secrets: {},
      raw,
      rawOriginal: raw,
    };
  });
};

/** Go duration ("4h", "1h30m", "90s") in seconds, or undefined. */
export const parseGoDuration = (text: string | undefined): number | undefined => {
  if (!text) return undefined;
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, "µs": 1e-6, ns: 1e-9 };
  const body = text.startsWith("-") ? text.slice(1) : text;
  while ((m = re.exec(body))) {
    total += Number(m[1]) * unit[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched !== body.length || matched === 0) return undefined;
  return text.startsWith("-") ? -total : total;
};

/** Severity of the proposal: an agent that decided a remediation thinks it serious. */
export const severityOf = (alert: Alert): "critical" | "high" | "medium" | "low" => {
  const type = eventTypeOf(alert.scenario);
  if (type === "exploitation") return "critical";
  if (alert.decisions.length > 0 || type === "auth_attempt") return "high";
  return "medium";
};
