// The action types: one entry each (payload schema, risk, what it acts on, the permissions execution
// is granted, a read-only dry-run and an executor that calls the owning domain's service inside the
// workflow's transaction). Adding a type is adding an entry here; nothing else switches on the type.
import { z } from "zod";
import type { Tx } from "../../db/client.ts";
import { defineErrors } from "../../lib/errors.ts";
import { normalizeCidr, normalizeIp } from "../../lib/ip.ts";
import type { Permission } from "../identity/permissions.ts";
import type { Actor } from "../identity/principal.ts";
import type { BlocklistService } from "../blocklist/blocklist.service.ts";
import type { PolicyService } from "../policy/policy.service.ts";
import type { KeysService } from "../identity/keys.service.ts";
import type { AccountsService } from "../identity/accounts.service.ts";
import type { SensorsService } from "../sensors/sensors.service.ts";
import { SECURITY_MODES } from "../policy/policy.schemas.ts";
import { ENTITY_TYPES } from "../blocklist/blocklist.schemas.ts";

export const RISK_LEVELS = ["low", "medium", "high"] as const;
export type Risk = (typeof RISK_LEVELS)[number];

/** Raised by a type's prepare/execute step when the domain cannot do what the request asks; recorded as `failed`. */
export const EXECUTION_ERRORS = defineErrors({
  ACTION_TARGET_NOT_FOUND: { status: 422, title: "What the action acts on does not exist" },
  ACTION_TARGET_UNCHANGED: { status: 422, title: "The action would change nothing" },
  ACTION_EXECUTOR_UNAVAILABLE: { status: 422, title: "This action type cannot be executed yet" },
});

/** The domain services a type may use (reads in dry-runs, writes in executors). */
export type ActionServices = {
  blocklist: Pick<BlocklistService, "createBlock" | "deactivateBlock" | "previewBlock">;
  policy: Pick<PolicyService, "getPolicy" | "updatePolicy">;
  keys: Pick<KeysService, "show" | "revoke" | "list">;
  accounts: Pick<AccountsService, "showUser" | "setDisabled" | "listSessions">;
  sensors: Pick<SensorsService, "showInstance" | "deactivate" | "sourceActivity">;
  /** Active rules that test `field` (the decision adapter answers; only it knows the engine). */
  rulesTesting(field: string): Promise<{ name: string; version: number; outcome: string; description: string }[]>;
};

/** What an action acts on, in the terms the policy engine's input uses (see decision.ts). */
export type ActionSubject = {
  entity?: { type: (typeof ENTITY_TYPES)[number]; value: string };
  /** The value as the requester gave it (action.payload.value). */
  value?: string;
  mode?: (typeof SECURITY_MODES)[number];
  durationSeconds?: number;
};

export type ReadContext<P> = { actor: Actor; services: ActionServices; payload: P; now: Date };
export type ExecuteContext<P, Prepared> = ReadContext<P> & { tx: Tx; prepared: Prepared; requestId: string; reason: string };

export type ActionType<P = any, Prepared = any> = {
  type: string;
  description: string;
  risk: Risk;
  payload: z.ZodType<P>;
  /** Permissions the executing principal acts with: the approved request is the authority for them. */
  grants: readonly Permission[];
  /** Read-only permissions the dry-run and the subject lookup use. */
  readGrants: readonly Permission[];
  subject(ctx: ReadContext<P>): Promise<ActionSubject>;
  dryRun(ctx: ReadContext<P>): Promise<Record<string, unknown>>;
  /** Reads before the execution transaction (a throw is a recorded failure); never writes. */
  prepare(ctx: ReadContext<P>): Promise<Prepared>;
  /** The domain change, inside the workflow's transaction: every read and write goes through ctx.tx. */
  execute(ctx: ExecuteContext<P, Prepared>): Promise<Record<string, unknown>>;
};

const define = <S extends z.ZodType, Prepared>(spec: ActionType<z.output<S>, Prepared> & { payload: S }): ActionType => spec as ActionType;

const entityPayload = {
  entity_type: z.enum(ENTITY_TYPES),
  value: z.string().trim().min(1).max(256).describe("an IP, a CIDR range, a username or an API key's visible prefix"),
};

/** The entity as the engine sees it; an unparseable IP/CIDR keeps only the raw value (the blocklist refuses it later). */
const entitySubject = (p: { entity_type: (typeof ENTITY_TYPES)[number]; value: string }): ActionSubject => ({
  entity: { type: p.entity_type, value: p.value },
  value: p.value,
});

const BLOCK_READ: Permission[] = ["blocklist:read"];
const enforcementNote = {
  check_endpoint: "GET /security/policy/check answers from memory and matches it as soon as the execution commits",
  ip_feed: "GET /security/policy/blocks.txt lists IP and CIDR blocks",
  registered_enforcement_points: null,
  note: "no enforcement-point registry exists yet (bouncers arrive with the CrowdSec issue): every point polling the two endpoints above receives it",
};

/** What the sensors saw of an IP lately (the dry-run's evidence); other entity types have no telemetry. */
const recentEvents = async (services: ActionServices, payload: { entity_type: string; value: string }, now: Date) => {
  if (payload.entity_type !== "ip") return { available: false, note: `sensor telemetry is kept per source IP; a ${payload.entity_type} block has none to show` };
  const ip = normalizeIp(payload.value);
  if (!ip) return { available: false, note: "not an IP address" };
  const activity = await services.sensors.sourceActivity(ip, now);
  return { available: true, source_ip: ip, ...activity };
};

const blockEntity = define({
  type: "block_entity",
  description: "Block an IP, a CIDR range, a user or an API key prefix (a blocklist entry, optionally expiring).",
  risk: "medium",
  payload: z.strictObject({
    ...entityPayload,
    duration_seconds: z.number().int().min(60).max(31_536_000).optional().describe("how long the block lasts; absent means until unblocked"),
  }),
  grants: ["blocklist:read", "blocklist:write"],
  readGrants: [...BLOCK_READ, "events:read"],
  subject: async ({ payload }) => ({ ...entitySubject(payload), ...(payload.duration_seconds !== undefined ? { durationSeconds: payload.duration_seconds } : {}) }),
  dryRun: async ({ actor, services, payload, now }) => {
    const preview = await services.blocklist.previewBlock(actor, payload.entity_type, payload.value);
    return {
      would_create: {
        entity_type: payload.entity_type,
        value: preview.value,
        expires_at: payload.duration_seconds ? new Date(now.getTime() + payload.duration_seconds * 1000).toISOString() : null,
      },
      already_blocked_by: preview.existing,
      overlapping_blocks: preview.overlapping.slice(0, 100),
      overlapping_count: preview.overlapping.length,
      protected_networks: preview.guardrails.map((g) => ({ code: g.code, detail: g.detail })),
      would_fail: preview.existing
        ? `an active block (${preview.existing.id}) already holds this value`
        : preview.guardrails.length
          ? `guardrail ${preview.guardrails[0]!.code}: ${preview.guardrails[0]!.detail}`
          : null,
      recent_events: await recentEvents(services, payload, now),
      enforcement_points: enforcementNote,
    };
  },
  prepare: async () => undefined,
  execute: async ({ tx, actor, services, payload, now, requestId, reason }) => {
    const block = await services.blocklist.createBlock(
      actor,
      {
        entity_type: payload.entity_type,
        value: payload.value,
        reason: `action ${requestId}${reason ? `: ${reason}` : ""}`.slice(0, 1000),
        ...(payload.duration_seconds ? { expires_at: new Date(now.getTime() + payload.duration_seconds * 1000).toISOString() } : {}),
        force: false,
      },
      tx,
    );
    return { block };
  },
});

const unblockEntity = define({
  type: "unblock_entity",
  description: "Deactivate the active block of an IP, CIDR range, user or API key prefix.",
  risk: "medium",
  payload: z.strictObject(entityPayload),
  grants: ["blocklist:read", "blocklist:write"],
  readGrants: BLOCK_READ,
  subject: async ({ payload }) => entitySubject(payload),
  dryRun: async ({ actor, services, payload }) => {
    const preview = await services.blocklist.previewBlock(actor, payload.entity_type, payload.value);
    return {
      would_deactivate: preview.existing,
      would_fail: preview.existing ? null : `no active block for ${payload.entity_type} ${preview.value}`,
      still_covered_by: preview.overlapping.slice(0, 100),
      enforcement_points: enforcementNote,
    };
  },
  prepare: async ({ actor, services, payload }) => {
    const preview = await services.blocklist.previewBlock(actor, payload.entity_type, payload.value);
    if (!preview.existing) throw EXECUTION_ERRORS.ACTION_TARGET_NOT_FOUND(`no active block for ${payload.entity_type} ${preview.value}`);
    return preview.existing.id;
  },
  execute: async ({ tx, actor, services, prepared, requestId, reason }) => ({
    block: await services.blocklist.deactivateBlock(actor, prepared, `action ${requestId}${reason ? `: ${reason}` : ""}`.slice(0, 1000), tx),
  }),
});

const setMode = define({
  type: "set_mode",
  description: "Switch the security mode (normal, elevated, lockdown).",
  risk: "high",
  payload: z.strictObject({ mode: z.enum(SECURITY_MODES) }),
  grants: ["policy:read", "policy:write"],
  readGrants: ["policy:read", "rules:read"],
  subject: async ({ payload }) => ({ mode: payload.mode, value: payload.mode }),
  dryRun: async ({ actor, services, payload }) => {
    const policy = await services.policy.getPolicy(actor);
    const rules = await services.rulesTesting("policy.mode");
    return {
      mode: { from: policy.default_mode, to: payload.mode, changes: policy.default_mode !== payload.mode },
      thresholds: { max_failed_auth: policy.max_failed_auth, max_scan_events: policy.max_scan_events, detection_window_minutes: policy.detection_window_minutes, changes: false },
      automations: {
        auto_elevate: policy.auto_elevate,
        auto_lockdown: policy.auto_lockdown,
        rules_testing_the_mode: rules,
        note: "rules that test policy.mode may decide differently once the mode changes",
      },
    };
  },
  prepare: async () => undefined,
  execute: async ({ tx, actor, services, payload }) => ({ policy: await services.policy.updatePolicy(actor, { default_mode: payload.mode }, tx) }),
});

const POLICY_FIELDS = ["auto_elevate", "auto_lockdown", "max_failed_auth", "max_scan_events", "detection_window_minutes", "notes"] as const;
const updatePolicy = define({
  type: "update_policy",
  description: "Change detection thresholds and escalation switches of the security policy (not the mode: see set_mode).",
  risk: "high",
  payload: z
    .strictObject({
      auto_elevate: z.boolean().optional(),
      auto_lockdown: z.boolean().optional(),
      max_failed_auth: z.number().int().min(1).max(10_000).optional(),
      max_scan_events: z.number().int().min(1).max(1_000_000).optional(),
      detection_window_minutes: z.number().int().min(1).max(1440).optional(),
      notes: z.string().max(2000).optional(),
    })
    .refine((v) => Object.keys(v).length > 0, { message: "give at least one field to change" }),
  grants: ["policy:read", "policy:write"],
  readGrants: ["policy:read"],
  subject: async () => ({}),
  dryRun: async ({ actor, services, payload }) => {
    const policy = await services.policy.getPolicy(actor);
    const changes = POLICY_FIELDS.filter((f) => payload[f] !== undefined && payload[f] !== policy[f]).map((f) => ({ field: f, from: policy[f], to: payload[f] }));
    return { changes, unchanged: POLICY_FIELDS.filter((f) => payload[f] !== undefined && payload[f] === policy[f]) };
  },
  prepare: async () => undefined,
  execute: async ({ tx, actor, services, payload }) => ({ policy: await services.policy.updatePolicy(actor, payload, tx) }),
});

const deactivateHoneypot = define({
  type: "deactivate_honeypot",
  description: "Deactivate a honeypot sensor (its key stops being accepted).",
  risk: "medium",
  payload: z.strictObject({ sensor_id: z.string().trim().min(1).max(128) }),
  grants: ["sensors:manage", "events:read"],
  readGrants: ["events:read"],
  subject: async ({ payload }) => ({ value: payload.sensor_id }),
  dryRun: async ({ actor, services, payload }) => {
    const sensor = await services.sensors.showInstance(actor, payload.sensor_id).catch((error: unknown) => {
      if ((error as { code?: string }).code === "SENSOR_NOT_FOUND") return null;
      throw error;
    });
    if (!sensor) return { sensor: null, keys_refused: [], would_fail: `no sensor with id ${payload.sensor_id}` };
    return {
      sensor: { id: sensor.id, name: sensor.name, honeypot_type: sensor.honeypot_type, location: sensor.location, active: sensor.active, last_event_at: sensor.last_event_at },
      keys_refused: sensor.active ? sensor.keys.filter((k) => k.status === "active" || k.status === "expiring").map((k) => k.prefix) : [],
      note: "the sensor's keys are refused at once on every node; its stored events stay",
      would_fail: sensor.active ? null : `sensor ${sensor.name} is already deactivated`,
    };
  },
  prepare: async ({ actor, services, payload }) => {
    const sensor = await services.sensors.showInstance(actor, payload.sensor_id).catch((error: unknown) => {
      if ((error as { code?: string }).code === "SENSOR_NOT_FOUND") throw EXECUTION_ERRORS.ACTION_TARGET_NOT_FOUND(`no sensor with id ${payload.sensor_id}`);
      throw error;
    });
    if (!sensor.active) throw EXECUTION_ERRORS.ACTION_TARGET_UNCHANGED(`sensor ${sensor.name} is already deactivated`);
    return sensor.id;
  },
  execute: async ({ tx, actor, services, prepared, requestId, reason }) => ({
    sensor: await services.sensors.deactivate(actor, prepared, `action ${requestId}${reason ? `: ${reason}` : ""}`.slice(0, 1000), tx),
  }),
});

const revokeApiKey = define({
  type: "revoke_api_key",
  description: "Revoke an API key (it stops authenticating at once, on every node).",
  risk: "high",
  payload: z.strictObject({ key_id: z.uuid() }),
  grants: ["keys:own", "keys:manage"],
  readGrants: ["keys:own", "keys:manage"],
  subject: async ({ actor, services, payload }) => {
    const key = await services.keys.show(actor, payload.key_id);
    return { entity: { type: "api_key", value: key.prefix }, value: key.prefix };
  },
  dryRun: async ({ actor, services, payload }) => {
    const key = await services.keys.show(actor, payload.key_id);
    return {
      key: { id: key.id, prefix: key.prefix, name: key.name, owner: key.owner, role: key.role, status: key.status, last_used_at: key.last_used_at },
      keys_affected: key.status === "active" ? [key.prefix] : [],
      sessions_affected: [],
      note: "API keys are independent of login sessions: the owner's sessions stay open",
      would_fail: key.status === "active" ? null : `the key is already ${key.status}`,
    };
  },
  prepare: async ({ actor, services, payload }) => {
    const key = await services.keys.show(actor, payload.key_id);
    if (key.status !== "active") throw EXECUTION_ERRORS.ACTION_TARGET_UNCHANGED(`API key ${key.prefix} is already ${key.status}`);
    return key.prefix;
  },
  execute: async ({ tx, actor, services, payload }) => {
    const key = await services.keys.revoke(actor, payload.key_id, tx);
    return { key: { id: key.id, prefix: key.prefix, status: key.status, revoked_at: key.revoked_at, revoked_by: key.revoked_by } };
  },
});

const disableUser = define({
  type: "disable_user",
  description: "Disable a user or service account: its sessions are revoked and its API keys stop working.",
  risk: "high",
  payload: z.strictObject({ user: z.string().trim().min(1).max(128).describe("user id or username") }),
  grants: ["users:read", "users:write"],
  readGrants: ["users:read", "keys:own", "keys:manage"],
  subject: async ({ actor, services, payload }) => {
    const user = (await services.accounts.showUser(actor, payload.user)) as { username: string };
    return { entity: { type: "user", value: user.username }, value: user.username };
  },
  dryRun: async ({ actor, services, payload }) => {
    const user = (await services.accounts.showUser(actor, payload.user)) as { id: string; username: string; role: string; disabled: boolean };
    const sessions = actor.principal.kind === "user" ? await services.accounts.listSessions(actor, user.id) : null;
    const keys = actor.principal.kind === "user" ? (await services.keys.list(actor, { user: user.id })).filter((k) => k.status === "active") : null;
    return {
      user: { id: user.id, username: user.username, role: user.role, disabled: user.disabled },
      sessions_affected: sessions?.map((s) => ({ id: (s as { id: string }).id })) ?? "not listed for a system principal",
      keys_affected: keys?.map((k) => ({ id: k.id, prefix: k.prefix, name: k.name })) ?? "not listed for a system principal",
      would_fail: user.disabled ? `${user.username} is already disabled` : null,
    };
  },
  prepare: async ({ actor, services, payload }) => {
    const user = (await services.accounts.showUser(actor, payload.user)) as { id: string; username: string; disabled: boolean };
    if (user.disabled) throw EXECUTION_ERRORS.ACTION_TARGET_UNCHANGED(`${user.username} is already disabled`);
    return user.id;
  },
  execute: async ({ tx, actor, services, prepared }) => {
    const user = (await services.accounts.setDisabled(actor, prepared, true, tx)) as { id: string; username: string; disabled: boolean };
    return { user: { id: user.id, username: user.username, disabled: user.disabled } };
  },
});

export const ACTION_TYPES: readonly ActionType[] = [blockEntity, unblockEntity, setMode, updatePolicy, deactivateHoneypot, revokeApiKey, disableUser];
export const ACTION_TYPE_NAMES = ACTION_TYPES.map((t) => t.type);
const byName = new Map(ACTION_TYPES.map((t) => [t.type, t]));
export const actionType = (name: string): ActionType | undefined => byName.get(name);

/** Canonical IP/CIDR text for an entity, or undefined (the engine then sees only the raw value). */
export const canonicalAddress = (type: string, value: string): { ip?: string; cidr?: { text: string; prefix: number; family: 4 | 6 } } => {
  if (type === "ip") {
    const ip = normalizeIp(value);
    return ip ? { ip } : {};
  }
  if (type === "cidr") {
    const c = normalizeCidr(value);
    return c ? { cidr: { text: c.text, prefix: c.prefix, family: c.family } } : {};
  }
  return {};
};
