// The shape every sensor adapter produces (native JSON, Cowrie, OpenCanary): one normalised event
// whose payload and redacted raw text never hold a captured credential; those travel in `secrets`.
import { normalizeIp, parseIpv4ToUint32 } from "../../../lib/ip.ts";

export const EVENT_TYPES = ["connection", "auth_attempt", "exploitation", "scan", "command", "session", "other"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export type NormalizedEvent = {
  /** The sender's own id when it has one (native event_id); null for Cowrie/OpenCanary lines. */
  eventId: string | null;
  /** Canonical text form (normalizeIp). */
  sourceIp: string;
  eventType: EventType;
  /** From the sender, else a stateless classifier (cowrie file transfer -> malware_download, command -> command_execution). */
  detectedThreat: string | null;
  /** null: the server uses the received time. */
  occurredAt: Date | null;
  /** Normalised fields; credentials never in here. */
  payload: Record<string, unknown>;
  /** Captured credentials by name, e.g. { password: "hunter2" }; {} when none. */
  secrets: Record<string, string>;
  /** The original item as text, credential values replaced by REDACTED. */
  raw: string;
  /** The original item's exact text (event key; stored only in plain mode). */
  rawOriginal: string;
};

export type AdapterResult = { ok: true; event: NormalizedEvent } | { ok: false; code: string; reason: string; path: string };

/** What replaces a credential value in raw text, payload messages and commands. */
export const REDACTED = "[redacted]";

/** Stable rejection codes of the adapters (the per-item `code` of a batch answer). */
export const ADAPTER_CODES = {
  NOT_AN_OBJECT: "EVENT_NOT_AN_OBJECT",
  UNKNOWN_FIELD: "EVENT_UNKNOWN_FIELD",
  MISSING_FIELD: "EVENT_MISSING_FIELD",
  INVALID_FIELD: "EVENT_INVALID_FIELD",
  INVALID_SOURCE_IP: "EVENT_INVALID_SOURCE_IP",
  INVALID_EVENT_TYPE: "EVENT_INVALID_TYPE",
  OCCURRED_IN_FUTURE: "EVENT_OCCURRED_IN_FUTURE",
} as const;

export const reject = (code: string, path: string, reason: string): AdapterResult => ({ ok: false, code, reason, path });

export const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** obj[key] = value as an own property, even for "__proto__" (a sender's key must stay data). */
export const setOwn = (obj: Record<string, unknown>, key: string, value: unknown): void => {
  if (key === "__proto__") Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
};

/**
 * normalizeIp with a fast path for the common case: text the strict IPv4 parser accepts (four
 * decimal octets, no leading zeros) is already canonical. Everything else goes through normalizeIp.
 */
export const canonicalIp = (text: string): string | null => (parseIpv4ToUint32(text) >= 0 ? text : normalizeIp(text));
