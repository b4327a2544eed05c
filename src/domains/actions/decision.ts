// The one place that knows the policy-as-code engine: builds the engine's `action_request` input from
// a request and asks the engine (which records the decision in the workflow's transaction), and
// turns the answer into the summary stored with the request, with a sentence explaining it.
import type { Tx } from "../../db/client.ts";
import type { Actor } from "../identity/principal.ts";
import type { Policy } from "../policy/policy.schemas.ts";
import type { RulesService } from "../rules/rules.service.ts";
import { canonicalAddress, type ActionSubject } from "./registry.ts";

export type Outcome = "ALLOW" | "REQUIRE_APPROVAL" | "DRY_RUN_ONLY" | "DENY";

/** What is stored with the request and shown at GET /security/actions/{id}. */
export type StoredDecision = {
  decision_id: string;
  outcome: Outcome;
  approvals_required: number;
  deciding_rule: { name: string; version: number | null } | null;
  matched: { name: string; version: number | null; outcome: string; approvals: number | null; priority: number }[];
  not_matched: { name: string; version: number | null; explanation: string }[];
  default_applied: boolean;
  explanation: string;
  input: Record<string, unknown>;
};

/** Sensor telemetry about the address acted on (issue 7), read before the decision's transaction. */
export type SourceTelemetry = { events_1h: number; exploitation_1h: number; hits_24h: number; sensors: string[] };
/** Where telemetry comes from: the sensors domain's sourceActivity (absent: the fields stay absent). */
export type TelemetrySource = { sourceActivity(ip: string, now: Date): Promise<SourceTelemetry> };

export type DecisionRequest = {
  id: string;
  type: string;
  reason: string;
  subject: ActionSubject;
  policy: Pick<Policy, "default_mode">;
  /** For IP entities: what the sensors saw of it (see telemetryFor). */
  telemetry?: SourceTelemetry | null;
};

/**
 * The engine input. Supplied: action.type, action.reason (when given), action.payload.value /
 * .mode / .duration_seconds (when the type has them), entity.type and, for addresses, entity.ip or
 * entity.cidr + entity.cidr_prefix, and entity.family; principal.id/kind/role; policy.mode.
 * For IP entities, from sensor telemetry: source.events_1h, source.exploitation_seen_1h,
 * evidence.honeypot_hits_24h, evidence.sensors (absent for other entities, or when no telemetry
 * source is wired). time.now is left to the engine's clock.
 */
export const engineInput = (actor: Actor, request: DecisionRequest): Record<string, unknown> => {
  const p = actor.principal;
  const { subject } = request;
  const payload: Record<string, unknown> = {};
  if (subject.value !== undefined) payload.value = subject.value;
  if (subject.mode !== undefined) payload.mode = subject.mode;
  if (subject.durationSeconds !== undefined) payload.duration_seconds = subject.durationSeconds;
  const action: Record<string, unknown> = { type: request.type };
  if (Object.keys(payload).length) action.payload = payload;
  if (request.reason) action.reason = request.reason;
  const input: Record<string, unknown> = {
    action,
    principal: p.kind === "user" ? { id: p.userId, kind: "user", role: p.role } : { id: `system:${p.name}`, kind: "system" },
    policy: { mode: request.policy.default_mode },
  };
  if (subject.entity) {
    const entity: Record<string, unknown> = { type: subject.entity.type };
    const address = canonicalAddress(subject.entity.type, subject.entity.value);
    if (address.ip) {
      entity.ip = address.ip;
      entity.family = address.ip.includes(":") ? 6 : 4;
    }
    if (address.cidr) {
      entity.cidr = address.cidr.text;
      entity.cidr_prefix = address.cidr.prefix;
      entity.family = address.cidr.family;
    }
    input.entity = entity;
  }
  const t = request.telemetry;
  if (t) {
    input.source = { events_1h: t.events_1h, exploitation_seen_1h: t.exploitation_1h > 0 };
    input.evidence = { honeypot_hits_24h: t.hits_24h, sensors: [...t.sensors] };
  }
  return input;
};

const ruleRef = (r: { name: string; version: number | null }) => `${r.name}${r.version === null ? "" : ` v${r.version}`}`;

export const explain = (d: Omit<StoredDecision, "explanation" | "input" | "decision_id">): string => {
  const need = d.outcome === "REQUIRE_APPROVAL" ? ` (${d.approvals_required} approval${d.approvals_required === 1 ? "" : "s"})` : "";
  const head = d.default_applied || !d.deciding_rule
    ? `no enforced rule matched, so the default ${d.outcome}${need} applies`
    : `${d.outcome}${need} by rule ${ruleRef(d.deciding_rule)}`;
  const others = d.matched.filter((m) => !d.deciding_rule || m.name !== d.deciding_rule.name);
  return others.length ? `${head}; also matched: ${others.map((m) => `${ruleRef(m)} (${m.outcome})`).join(", ")}` : head;
};

export const actionDecisions = ({ rules, telemetry }: { rules: Pick<RulesService, "decideAndRecord" | "list">; telemetry?: TelemetrySource }) => {
  /**
   * The telemetry fields of an IP entity, read before the decision's transaction (PGlite runs one
   * transaction at a time, and no slow work belongs inside one). Null for anything else.
   */
  const telemetryFor = async (subject: ActionSubject, now: Date): Promise<SourceTelemetry | null> => {
    if (!telemetry || subject.entity?.type !== "ip") return null;
    const ip = canonicalAddress("ip", subject.entity.value).ip;
    return ip ? telemetry.sourceActivity(ip, now) : null;
  };

  /** Decides and records (in `tx`); the caller's actor needs rules:read, which every role has. */
  const decide = async (tx: Tx, actor: Actor, request: DecisionRequest): Promise<StoredDecision> => {
    const input = engineInput(actor, request);
    const d = await rules.decideAndRecord(tx, actor, "action_request", input, { type: "action_request", id: request.id });
    const summary = {
      outcome: d.outcome as Outcome,
      approvals_required: d.outcome === "REQUIRE_APPROVAL" ? Math.max(1, d.approvals_required ?? 1) : 0,
      deciding_rule: d.deciding_rule,
      matched: d.matched.map((m) => ({ name: m.name, version: m.version, outcome: m.outcome, approvals: m.approvals, priority: m.priority })),
      not_matched: d.not_matched.map((m) => ({ name: m.name, version: m.version, explanation: m.failed_clause.explanation })),
      default_applied: d.default_applied,
    };
    return { decision_id: d.decision_id, ...summary, explanation: explain(summary), input: d.input };
  };

  /** Active action_request rules whose condition tests `field` (for dry-run reports). */
  const rulesTesting = async (actor: Actor, field: string) => {
    const page = await rules.list(actor, { status: "ACTIVE", target: "action_request", limit: 1000 });
    const needle = JSON.stringify(field);
    return page.items
      .filter((r) => JSON.stringify((r as { when?: unknown }).when ?? null).includes(`"field":${needle}`))
      .map((r) => ({ name: r.name, version: r.version, outcome: String(r.outcome), description: String(r.description ?? "") }));
  };

  return { decide, rulesTesting, telemetryFor };
};
export type ActionDecisions = ReturnType<typeof actionDecisions>;
