// Events in Portcullis's own contract (the seed's): {source_ip, event_type, payload, detected_threat,
// event_id, occurred_at}. Unknown top-level fields are refused so a typo is an error, not lost data.
// Credential-looking payload keys (password, token, secret, api_key ...) and credentials inside
// payload strings (a command line with curl -u user:pass) move to `secrets`.
import { rewriteJsonValues } from "./json-text.ts";
import { cleanValue, MAX_NESTING, NestingTooDeep } from "./redact.ts";
import { ADAPTER_CODES, canonicalIp, EVENT_TYPES, isPlainObject, reject, type AdapterResult, type EventType } from "./types.ts";

const FIELDS = new Set(["source_ip", "event_type", "payload", "detected_threat", "event_id", "occurred_at"]);
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
// Printable, no control characters: these end up in filters, dashboards and log lines.
const LABEL = /^[^\u0000-\u001f\u007f]+$/;
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;
export const MAX_PAYLOAD_DEPTH = MAX_NESTING;

export const fromNative = (value: unknown, rawText: string, now: Date = new Date()): AdapterResult => {
  if (!isPlainObject(value)) return reject(ADAPTER_CODES.NOT_AN_OBJECT, "", "an event is a JSON object");
  for (const key of Object.keys(value)) {
    if (!FIELDS.has(key)) return reject(ADAPTER_CODES.UNKNOWN_FIELD, key, `unknown field "${key.slice(0, 64)}" (allowed: ${[...FIELDS].join(", ")})`);
  }
  if (value.source_ip === undefined) return reject(ADAPTER_CODES.MISSING_FIELD, "source_ip", "source_ip is required");
  const sourceIp = typeof value.source_ip === "string" ? canonicalIp(value.source_ip) : null;
  if (sourceIp === null) return reject(ADAPTER_CODES.INVALID_SOURCE_IP, "source_ip", "source_ip must be an IPv4 or IPv6 address");
  if (value.event_type === undefined) return reject(ADAPTER_CODES.MISSING_FIELD, "event_type", "event_type is required");
  if (typeof value.event_type !== "string" || !(EVENT_TYPES as readonly string[]).includes(value.event_type))
    return reject(ADAPTER_CODES.INVALID_EVENT_TYPE, "event_type", `event_type must be one of ${EVENT_TYPES.join(", ")}`);
  const eventType = value.event_type as EventType;
  if (value.payload !== undefined && !isPlainObject(value.payload)) return reject(ADAPTER_CODES.INVALID_FIELD, "payload", "payload must be a JSON object");
  let detectedThreat: string | null = null;
  if (value.detected_threat !== undefined && value.detected_threat !== null) {
    const t = value.detected_threat;
    if (typeof t !== "string" || t.length < 1 || t.length > 100 || !LABEL.test(t))
      return reject(ADAPTER_CODES.INVALID_FIELD, "detected_threat", "detected_threat must be null or a string of 1 to 100 printable characters");
    detectedThreat = t;
  }
  let eventId: string | null = null;
  if (value.event_id !== undefined) {
    const id = value.event_id;
    if (typeof id !== "string" || id.length < 1 || id.length > 200 || !LABEL.test(id))
      return reject(ADAPTER_CODES.INVALID_FIELD, "event_id", "event_id must be a string of 1 to 200 printable characters");
    eventId = id;
  }
  let occurredAt: Date | null = null;
  if (value.occurred_at !== undefined) {
    const at = value.occurred_at;
    const t = typeof at === "string" && ISO_8601.test(at) ? Date.parse(at) : NaN;
    if (!Number.isFinite(t)) return reject(ADAPTER_CODES.INVALID_FIELD, "occurred_at", "occurred_at must be an ISO 8601 date-time with a time zone, e.g. 2026-01-01T12:00:00Z");
    if (t > now.getTime() + MAX_FUTURE_SKEW_MS)
      return reject(ADAPTER_CODES.OCCURRED_IN_FUTURE, "occurred_at", `occurred_at is more than 5 minutes in the future (${at as string})`);
    occurredAt = new Date(t);
  }
  const secrets: Record<string, string> = {};
  const rawReplacements = new Map<string, string>();
  let payload: Record<string, unknown> = {};
  if (value.payload !== undefined) {
    try {
      payload = cleanValue(value.payload, { secrets, raw: rawReplacements, rawRoot: ["payload"], secretRoot: [], path: [] }) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof NestingTooDeep) return reject(ADAPTER_CODES.INVALID_FIELD, "payload", `payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels`);
      throw err;
    }
  }
  return {
    ok: true,
    event: { eventId, sourceIp, eventType, detectedThreat, occurredAt, payload, secrets, raw: rewriteJsonValues(rawText, rawReplacements), rawOriginal: rawText },
  };
};
