// The typed field catalogue: every field a rule may test, per target, with its type. The expression
// schema enumerates these names (a misspelled field is refused on save), the input schema is derived
// from it (an unknown or wrongly typed input field is refused at evaluation), and the compiler picks
// each comparison's semantics from the type. Fields marked `derived` are computed by the engine.
import { ROLES } from "../identity/permissions.ts";

export const TARGETS = ["action_request", "event"] as const;
export type Target = (typeof TARGETS)[number];

export const FIELD_TYPES = ["string", "integer", "number", "boolean", "ip", "cidr", "timestamp", "string_list"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

export type FieldSpec = {
  type: FieldType;
  /** Closed set of values (string fields only); a rule comparing with anything else is refused. */
  enum?: readonly string[];
  /** Integer range, checked on input. */
  min?: number;
  max?: number;
  description: string;
  /** Computed by the engine, never supplied in the input (see docs/rules.md). */
  derived?: boolean;
  /** Who fills it in when the engine is asked for a decision. */
  suppliedBy?: string;
};

export const MODES = ["normal", "elevated", "lockdown"] as const;
export const ENTITY_TYPES = ["ip", "cidr", "user", "api_key"] as const;
export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
/** Known action types; `action.type` stays an open string so the workflow can add types. */
/** The action workflow's registry (src/domains/actions/registry.ts); a test keeps the two equal. */
export const KNOWN_ACTION_TYPES = ["block_entity", "unblock_entity", "set_mode", "update_policy", "deactivate_honeypot", "revoke_api_key", "disable_user"] as const;

const WORKFLOW = "the action workflow, from the request";
const TELEMETRY = "the action workflow, from sensor telemetry";

const common = {
  "principal.id": { type: "string", description: "who asked: user id, or system:<name>", suppliedBy: WORKFLOW },
  "principal.kind": { type: "string", enum: ["user", "system"], description: "user or system (sentinel, sweeps)", suppliedBy: WORKFLOW },
  "principal.role": { type: "string", enum: ROLES, description: "the role of a user principal", suppliedBy: WORKFLOW },
  "policy.mode": { type: "string", enum: MODES, description: "the security mode when the decision is made", suppliedBy: "the caller, from the security policy" },
  "time.now": { type: "timestamp", description: "when the decision is made (ISO 8601); the engine fills it from its clock when absent", suppliedBy: "the engine's clock unless given" },
  "time.hour": { type: "integer", min: 0, max: 23, description: "hour of day of time.now, UTC", derived: true },
  "time.weekday": { type: "string", enum: WEEKDAYS, description: "weekday of time.now, UTC", derived: true },
  "evidence.honeypot_hits_24h": { type: "integer", min: 0, description: "honeypot events naming this address in the last 24 hours", suppliedBy: TELEMETRY },
  "evidence.sensors": { type: "string_list", description: "names of the sensors whose evidence names this address", suppliedBy: TELEMETRY },
} as const satisfies Record<string, FieldSpec>;

export const CATALOGUE: Readonly<Record<Target, Readonly<Record<string, FieldSpec>>>> = {
  action_request: {
    "action.type": { type: "string", description: `the action asked for: ${KNOWN_ACTION_TYPES.join(", ")} (open set)`, suppliedBy: WORKFLOW },
    "action.type_has_rule": {
      type: "boolean",
      derived: true,
      description: "whether an enforced active rule names this action.type (with eq or in, not under not); false means no rule of its own",
    },
    "action.payload.value": { type: "string", description: "the value acted on as given: an IP, CIDR, username or key prefix", suppliedBy: WORKFLOW },
    "action.payload.mode": { type: "string", enum: MODES, description: "for set_mode: the mode asked for", suppliedBy: WORKFLOW },
    "action.payload.duration_seconds": { type: "integer", min: 0, description: "for blocks: how long; absent means no expiry", suppliedBy: WORKFLOW },
    "action.reason": { type: "string", description: "the requester's justification", suppliedBy: WORKFLOW },
    "entity.type": { type: "string", enum: ENTITY_TYPES, description: "what the action acts on", suppliedBy: WORKFLOW },
    "entity.ip": { type: "ip", description: "the address acted on, when entity.type is ip", suppliedBy: WORKFLOW },
    "entity.cidr": { type: "cidr", description: "the range acted on, when entity.type is cidr", suppliedBy: WORKFLOW },
    "entity.cidr_prefix": { type: "integer", min: 0, max: 128, description: "prefix length of entity.cidr", suppliedBy: WORKFLOW },
    "entity.family": { type: "integer", min: 4, max: 6, description: "4 or 6, for ip and cidr entities", suppliedBy: WORKFLOW },
    "source.exploitation_seen_1h": {
      type: "boolean",
      description: "the address acted on was seen exploiting (not just scanning) in the last hour",
      suppliedBy: TELEMETRY,
    },
    "source.events_1h": { type: "integer", min: 0, description: "events from the address acted on in the last hour", suppliedBy: TELEMETRY },
    ...common,
  },
  event: {
    "event.type": { type: "string", description: "event type from the sensor adapter, e.g. auth_attempt, port_scan, exploit", suppliedBy: "event ingestion" },
    "event.sensor": { type: "string", description: "name of the sensor that reported it", suppliedBy: "event ingestion" },
    "event.count_10m": { type: "integer", min: 0, description: "events of this type from this source in the last 10 minutes", suppliedBy: "event ingestion" },
    "event.distinct_targets_10m": { type: "integer", min: 0, description: "distinct destination hosts or ports this source touched in the last 10 minutes", suppliedBy: "event ingestion" },
    "event.username": { type: "string", description: "username tried, for authentication events", suppliedBy: "event ingestion" },
    "source.ip": { type: "ip", description: "the event's source address", suppliedBy: "event ingestion" },
    ...common,
  },
};

export const fieldNames = (target: Target): string[] => Object.keys(CATALOGUE[target]);
export const suppliedFieldNames = (target: Target): string[] =>
  Object.entries(CATALOGUE[target])
    .filter(([, spec]) => !spec.derived)
    .map(([name]) => name);

export const isTarget = (value: unknown): value is Target => typeof value === "string" && (TARGETS as readonly string[]).includes(value);

/** Damerau-free edit distance for "did you mean" hints; names are short, so the quadratic table is fine. */
const distance = (a: string, b: string): number => {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
};

/** The closest candidate within a small distance, for error messages. */
export const closest = (value: string, candidates: readonly string[]): string | undefined => {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(value.length / 3)) + 1;
  for (const c of candidates) {
    const d = distance(value, c);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
};
