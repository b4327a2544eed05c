// Watchers (CrowdSec agents, cscli, fail2ban's crowdsec action): registration that waits for an
// admin's validation, password login for a 1-hour token, heartbeats, and alerts. An alert is stored,
// becomes sensor-style events under one keyless sensor per watcher, and for its source a block
// proposal through the policy engine (the sentinel); the agent's own decisions are only evidence.
// DELETE /v1/decisions likewise only raises unblock requests: a watcher never changes the blocklist
// by itself.
import type { Database, Tx } from "../../db/client.ts";
import { isUniqueViolation } from "../../db/errors.ts";
import { sha256Hex } from "../../lib/crypto.ts";
import { AppError } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { canonicalize } from "../../lib/jcs.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import type { PasswordHasher } from "../identity/passwords.ts";
import { actorName, machinePrincipal, requirePermission, systemActor, type Actor, type SystemPrincipal } from "../identity/principal.ts";
import type { NormalizedEvent } from "../sensors/adapters/types.ts";
import { alertEvents, parseGoDuration, readAlert, severityOf, sourceIpOf, sourceRangeOf, type Alert } from "./alerts.ts";
import { CROWDSEC_ERRORS, type BouncersService, type LookupQuery } from "./bouncers.service.ts";
import type { CrowdsecRepo, WatcherRow } from "./crowdsec.repo.ts";
import { LAPI_ERRORS } from "./lapi-errors.ts";
import type { WatcherTokens } from "./watcher-tokens.ts";

/** What a watcher's token may do: push alerts (and read them back, heartbeat). */
export const WATCHER_PERMISSIONS = ["events:ingest"] as const;

/** The sensors domain as alerts need it (services.sensors). */
export type SensorPort = {
  ensureSensor(actor: Actor, input: { name: string; honeypot_type: string; location?: string; metadata?: Record<string, unknown> }): Promise<{ id: string; name: string }>;
  ingestNormalized(actor: Actor, sensorId: string, events: NormalizedEvent[]): Promise<{ index: number; status: string; id?: string }[]>;
};
/** The detection domain's proposal entry point (services.sentinel). */
export type SentinelPort = {
  proposeBlock(input: {
    sourceIp: string;
    threat: string;
    severity: "critical" | "high" | "medium" | "low";
    origin: string;
    reason: string;
    evidence: Record<string, unknown>;
    durationSeconds?: number;
  }): Promise<{ incidentId: string; actionRequestId: string | null; status: string | null }>;
};
/** The action workflow, for unblock requests and for block requests while no sentinel exists. */
export type ActionsPort = {
  createRequest(
    actor: Actor,
    input: { action_type: string; payload: Record<string, unknown>; reason: string; dry_run: boolean },
    options?: { openKey?: string },
  ): Promise<{ id: string; status: string }>;
  getRequest(actor: Actor, id: string): Promise<{ status: string }>;
};

const KNOWN_PASSWORD_MAX = 256;
const WATCHER_CACHE_TTL_MS = 5_000;
const HEARTBEAT_WRITE_MS = 10_000;
const MAX_ALERTS_PER_PUSH = 500;
/** DELETE /v1/decisions raises at most this many unblock requests per call. */
export const MAX_UNBLOCKS_PER_CALL = 100;
const OPEN_STATUSES = new Set(["pending", "approved"]);

export type WatcherView = {
  id: string;
  machine_id: string;
  validated: boolean;
  validated_at: string | null;
  validated_by: string | null;
  created_at: string;
  registered_from: string | null;
  agent_name: string | null;
  agent_version: string | null;
  scenarios: string[];
  last_login_at: string | null;
  last_heartbeat_at: string | null;
  last_push_at: string | null;
};

const watcherView = (w: WatcherRow): WatcherView => ({
  id: w.id,
  machine_id: w.machineId,
  validated: w.validated,
  validated_at: w.validatedAt?.toISOString() ?? null,
  validated_by: w.validatedBy,
  created_at: w.createdAt.toISOString(),
  registered_from: w.registeredFrom,
  agent_name: w.agentName,
  agent_version: w.agentVersion,
  scenarios: w.scenarios,
  last_login_at: w.lastLoginAt?.toISOString() ?? null,
  last_heartbeat_at: w.lastHeartbeatAt?.toISOString() ?? null,
  last_push_at: w.lastPushAt?.toISOString() ?? null,
});

const MACHINE_ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
const agentOf = (ua: string | undefined) => {
  const first = (ua ?? "").trim().split(/\s+/)[0]?.slice(0, 200) ?? "";
  const slash = first.indexOf("/");
  return slash > 0 ? { agentName: first.slice(0, slash), agentVersion: first.slice(slash + 1) || null } : { agentName: first || null, agentVersion: null };
};

type Deps = {
  db: Database;
  repo: CrowdsecRepo;
  audit: Pick<AuditService, "append">;
  clock: Clock;
  passwords: PasswordHasher;
  tokens: WatcherTokens;
  bouncers: Pick<BouncersService, "findDecisions">;
  sensors?: SensorPort | undefined;
  sentinel?: SentinelPort | undefined;
  actions?: ActionsPort | undefined;
  /** Tells other nodes to drop cached watchers (published in the changing transaction). */
  changeFeed?: { publish(tx: Tx): Promise<void> };
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
};

export type RequestContext = { address: string | null; userAgent: string | undefined; requestId: string | null };

export const watchersService = ({ db, repo, audit, clock, passwords, tokens, bouncers, sensors, sentinel, actions, changeFeed, log }: Deps) => {
  // The system acting for the CrowdSec surface: creating a watcher's sensor, raising requests.
  const crowdsecActor = (requestId: string | null): Actor => ({ ...systemActor("crowdsec"), requestId });
  const watcherActor = (w: WatcherRow, requestId: string | null): Actor => ({ principal: principalOf(w), requestId });
  const principalOf = (w: WatcherRow): SystemPrincipal => machinePrincipal("watcher", w.id, w.machineId, [...WATCHER_PERMISSIONS]);

  // ---- registration and login (public routes) ----
  const readCredentials = (body: unknown): { machineId: string; password: string; scenarios?: unknown } => {
    if (!isObject(body)) throw LAPI_ERRORS.badRequest("validation failure list:\nmachine_id in body is required\npassword in body is required");
    const missing = ["machine_id", "password"].filter((k) => typeof body[k] !== "string" || body[k] === "");
    if (missing.length) throw LAPI_ERRORS.badRequest(`validation failure list:\n${missing.map((k) => `${k} in body is required`).join("\n")}`);
    const machineId = body.machine_id as string;
    const password = body.password as string;
    if (!MACHINE_ID.test(machineId)) throw LAPI_ERRORS.badRequest("machine_id: 1-200 letters, digits and . _ @ - (starting with a letter or digit)");
    if (password.length < 8 || password.length > KNOWN_PASSWORD_MAX) throw LAPI_ERRORS.badRequest(`password: 8 to ${KNOWN_PASSWORD_MAX} characters`);
    return { machineId, password, scenarios: body.scenarios };
  };

  /** POST /v1/watchers: a pending watcher; an admin validates it before it can log in. */
  const register = async (body: unknown, ctx: RequestContext): Promise<void> => {
    const { machineId, password } = readCredentials(body);
    const hash = await passwords.hash(password);
    const now = clock.now();
    const row: WatcherRow = {
      id: uuidv7(),
      machineId,
      passwordHash: hash,
      validated: false,
      validatedAt: null,
      validatedBy: null,
      createdAt: now,
      registeredFrom: ctx.address,
      ...agentOf(ctx.userAgent),
      scenarios: [],
      lastLoginAt: null,
      lastHeartbeatAt: null,
      lastPushAt: null,
      lastAddress: ctx.address,
      tokenVersion: 1,
    };
    try {
      await db.transaction(async (tx) => {
        const inserted = await repo.insertWatcher(row, tx);
        await audit.append(tx, watcherActor(inserted, ctx.requestId), {
          action: "crowdsec.watcher.registered",
          target: { type: "crowdsec_watcher", id: inserted.id },
          after: watcherView(inserted),
        });
      });
    } catch (error) {
      // CrowdSec's answer to a taken machine id.
      if (isUniqueViolation(error)) throw LAPI_ERRORS.forbidden(`user '${machineId}': user already exist`);
      throw error;
    }
  };

  /** POST /v1/watchers/login: {code, expire, token}; 403 for an unknown machine, a wrong password or a pending watcher. */
  const login = async (body: unknown, ctx: RequestContext): Promise<{ code: number; expire: string; token: string }> => {
    const { machineId, password, scenarios } = readCredentials(body);
    const watcher = await repo.watcherByMachineId(machineId);
    // The same work (one argon2 verification) whether or not the machine exists.
    const ok = watcher ? await passwords.verify(watcher.passwordHash, password) : await passwords.burn(password);
    if (!watcher || !ok) throw LAPI_ERRORS.loginRefused("incorrect Username or Password");
    if (!watcher.validated) throw LAPI_ERRORS.loginRefused(`machine ${watcher.machineId} not validated`);
    const { token, expiresAt } = await tokens.issue({ watcherId: watcher.id, machineId: watcher.machineId, version: watcher.tokenVersion });
    // A login rewrites the scenarios, agent and address the admin sees: audited, one entry per login.
    await db.transaction(async (tx) => {
      const updated = await repo.updateWatcher(
        watcher.id,
        {
          lastLoginAt: clock.now(),
          lastAddress: ctx.address,
          ...agentOf(ctx.userAgent),
          ...(Array.isArray(scenarios) ? { scenarios: scenarios.filter((s): s is string => typeof s === "string").slice(0, 1000) } : {}),
        },
        tx,
      );
      if (!updated) throw LAPI_ERRORS.loginRefused("incorrect Username or Password");
      await audit.append(tx, watcherActor(updated, ctx.requestId), {
        action: "crowdsec.watcher.login",
        target: { type: "crowdsec_watcher", id: updated.id },
        before: { agent_name: watcher.agentName, agent_version: watcher.agentVersion, scenarios: watcher.scenarios, last_address: watcher.lastAddress },
        after: { agent_name: updated.agentName, agent_version: updated.agentVersion, scenarios: updated.scenarios, last_address: updated.lastAddress },
      });
    });
    return { code: 200, expire: rfc3339(expiresAt), token };
  };

  // ---- the token scheme ----
  const cache = new Map<string, { row: WatcherRow; at: number }>();
  const loadWatcher = async (id: string): Promise<WatcherRow | undefined> => {
    const hit = cache.get(id);
    if (hit && Date.now() - hit.at < WATCHER_CACHE_TTL_MS) return hit.row;
    const row = await repo.watcherById(id);
    if (row) cache.set(id, { row, at: Date.now() });
    else cache.delete(id);
    return row;
  };

  /** Authorization: Bearer <token> of a validated, existing watcher whose token version is current. */
  const authenticate = async (header: string | undefined): Promise<SystemPrincipal> => {
    if (!header) throw LAPI_ERRORS.tokenRefused("auth header is empty");
    const match = /^Bearer\s+(\S{1,4096})\s*$/i.exec(header);
    if (!match) throw LAPI_ERRORS.tokenRefused("auth header is invalid");
    const claims = await tokens.verify(match[1]!);
    const watcher = await loadWatcher(claims.watcherId);
    if (!watcher || !watcher.validated || watcher.tokenVersion !== claims.version) throw LAPI_ERRORS.tokenRefused("token is no longer valid; log in again");
    return principalOf(watcher);
  };

  const watcherOf = async (actor: Actor): Promise<WatcherRow> => {
    requirePermission(actor, "events:ingest");
    const id = actor.principal.kind === "system" && actor.principal.machine?.type === "watcher" ? actor.principal.machine.id : undefined;
    const row = id ? await loadWatcher(id) : undefined;
    if (!row) throw LAPI_ERRORS.tokenRefused("token is no longer valid; log in again");
    return row;
  };

  /** GET /v1/heartbeat */
  const heartbeat = async (actor: Actor): Promise<void> => {
    const w = await watcherOf(actor);
    const now = clock.now();
    if (w.lastHeartbeatAt && now.getTime() - w.lastHeartbeatAt.getTime() < HEARTBEAT_WRITE_MS) return;
    const updated = await repo.updateWatcher(w.id, { lastHeartbeatAt: now });
    if (updated) cache.set(w.id, { row: updated, at: Date.now() });
  };

  // ---- alerts ----
  const sensorFor = async (w: WatcherRow, requestId: string | null): Promise<string | undefined> => {
    if (!sensors) return undefined;
    const sensor = await sensors.ensureSensor(crowdsecActor(requestId), {
      name: `crowdsec:${w.machineId}`,
      honeypot_type: "crowdsec",
      metadata: { crowdsec_watcher_id: w.id, machine_id: w.machineId },
    });
    return sensor.id;
  };

  /** An open block request already raised for this source from an earlier alert (fallback path only). */
  const openRequestFor = async (value: string, requestId: string | null): Promise<string | null> => {
    if (!actions) return null;
    const earlier = await repo.listAlerts({ sourceValue: value }, 20);
    for (const a of earlier) {
      const id = (a.proposal as { action_request_id?: string } | null)?.action_request_id;
      if (!id) continue;
      const current = await actions.getRequest(crowdsecActor(requestId), id).catch(() => undefined);
      if (current && OPEN_STATUSES.has(current.status)) return id;
    }
    return null;
  };

  const propose = async (alert: Alert, w: WatcherRow, alertId: number, requestId: string | null): Promise<Record<string, unknown> | null> => {
    if (alert.simulated) return { skipped: "simulated alert" };
    const ip = sourceIpOf(alert);
    const range = ip ? null : sourceRangeOf(alert);
    if (!ip && !range) return { skipped: `source scope ${alert.source.scope} is not an IP or range` };
    const durations = alert.decisions.map((d) => parseGoDuration(d.duration)).filter((s): s is number => s !== undefined && s > 0);
    const durationSeconds = durations.length ? Math.min(31_536_000, Math.max(60, Math.round(Math.max(...durations)))) : undefined;
    // The request's reason reads "crowdsec/<machine>: <scenario> (<message>)"; decision-feed.ts reads
    // origin and scenario back from it once the block exists.
    const origin = `crowdsec/${w.machineId}`;
    const what = `${alert.scenario} (${alert.message.slice(0, 300)})`;
    const reason = `${origin}: ${what}`;
    const evidence = {
      crowdsec_alert_id: alertId,
      machine_id: w.machineId,
      scenario: alert.scenario,
      scenario_version: alert.scenario_version,
      events_count: alert.events_count,
      start_at: alert.start_at,
      stop_at: alert.stop_at,
      source: alert.source,
      proposed_decisions: alert.decisions,
    };
    if (sentinel && ip) {
      const r = await sentinel.proposeBlock({
        sourceIp: ip,
        threat: alert.scenario,
        severity: severityOf(alert),
        origin,
        reason: what,
        evidence,
        ...(durationSeconds !== undefined ? { durationSeconds } : {}),
      });
      return { via: "sentinel", incident_id: r.incidentId, action_request_id: r.actionRequestId, status: r.status };
    }
    if (!actions) return { skipped: "no proposal path configured" };
    const value = (ip ?? range)!;
    const open = await openRequestFor(value, requestId);
    if (open) return { via: "actions", action_request_id: open, status: "already_open" };
    try {
      const req = await actions.createRequest(crowdsecActor(requestId), {
        action_type: "block_entity",
        payload: { entity_type: ip ? "ip" : "cidr", value, ...(durationSeconds !== undefined ? { duration_seconds: durationSeconds } : {}) },
        reason,
        dry_run: true,
      });
      return { via: "actions", action_request_id: req.id, status: req.status };
    } catch (error) {
      // The policy may deny it, or the value trip a guardrail (a 4xx refusal): recorded on the alert,
      // not an error for the agent. Anything else (a lost connection, a deadlock) fails the push so
      // the agent resends it.
      if (!(error instanceof AppError) || error.status >= 500) throw error;
      return { via: "actions", action_request_id: null, refused: error.code, detail: error.message.slice(0, 500) };
    }
  };

  /**
   * One alert, idempotently: the alert row is claimed by its key (a resend finds it), then its events
   * are stored and its proposal raised, each step recorded on the row, and the row completed together
   * with its audit entry. A step that fails with anything but a deliberate refusal fails the push
   * (5xx, so the agent resends); the resend resumes at the first step not recorded as done.
   */
  const storeAlert = async (actor: Actor, w: WatcherRow, alert: Alert, raw: unknown, sensorId: string | undefined, now: Date, ctx: RequestContext): Promise<number> => {
    const alertKey = sha256Hex(`${w.id}\n${canonicalize(raw)}`);
    let row = await repo.alertByKey(alertKey);
    if (!row) {
      try {
        row = await repo.insertAlert({
          watcherId: w.id,
          machineId: w.machineId,
          receivedAt: now,
          scenario: alert.scenario,
          sourceScope: alert.source.scope,
          sourceValue: sourceIpOf(alert) ?? sourceRangeOf(alert) ?? alert.source.value,
          sourceIp: sourceIpOf(alert),
          eventsCount: alert.events_count,
          startAt: alert.start_at,
          stopAt: alert.stop_at,
          simulated: alert.simulated,
          alert: alert as unknown as Record<string, unknown>,
          eventIds: [],
          proposal: null,
          alertKey,
          eventsStored: false,
          completedAt: null,
        });
      } catch (error) {
        // The same alert pushed concurrently: the other request stored it.
        if (!isUniqueViolation(error)) throw error;
        row = await repo.alertByKey(alertKey);
        if (!row) throw error;
      }
    }
    if (row.completedAt) return row.id;
    let eventIds = row.eventIds;
    if (!row.eventsStored) {
      if (sensors && sensorId) {
        const events = alertEvents(alert, JSON.stringify(raw), w.machineId, row.id, now);
        if (events.length) {
          try {
            const results = await sensors.ingestNormalized(actor, sensorId, events);
            eventIds = results.filter((x) => x.id !== undefined).map((x) => String(x.id));
          } catch (error) {
            // A deactivated sensor refuses events on purpose: the alert is still kept and proposed.
            if (!(error instanceof AppError && error.code === "SENSOR_DEACTIVATED")) throw error;
            log?.warn({ machine_id: w.machineId, code: error.code }, "the events of a CrowdSec alert were refused");
          }
        }
      }
      await repo.updateAlert(row.id, { eventIds, eventsStored: true });
    }
    const proposal = row.proposal ?? (await propose(alert, w, row.id, ctx.requestId));
    // The proposal's outcome is recorded first on its own: if completing fails, a resend does not propose again.
    if (!row.proposal) await repo.updateAlert(row.id, { proposal });
    await db.transaction(async (tx) => {
      await repo.updateAlert(row.id, { completedAt: clock.now() }, tx);
      await audit.append(tx, watcherActor(w, ctx.requestId), {
        action: "crowdsec.alert.received",
        target: { type: "crowdsec_alert", id: String(row.id) },
        details: {
          machine_id: w.machineId,
          scenario: alert.scenario,
          source: { scope: alert.source.scope, value: row.sourceValue },
          simulated: alert.simulated,
          events_stored: eventIds.length,
          proposal,
        },
      });
    });
    return row.id;
  };

  /** POST /v1/alerts: the ids (as strings) of the stored alerts, in order. */
  const pushAlerts = async (actor: Actor, body: unknown, ctx: RequestContext): Promise<string[]> => {
    const w = await watcherOf(actor);
    if (!Array.isArray(body)) throw LAPI_ERRORS.badRequest("validation failure list:\nbody must be an array of alerts");
    if (body.length > MAX_ALERTS_PER_PUSH) throw LAPI_ERRORS.badRequest(`at most ${MAX_ALERTS_PER_PUSH} alerts per request`);
    const read = body.map((item, i) => readAlert(item, i));
    const bad = read.find((r) => !r.ok);
    if (bad && !bad.ok) throw LAPI_ERRORS.badRequest(`validation failure list:\n${bad.path}: ${bad.message}`);
    const now = clock.now();
    const ids: string[] = [];
    const sensorId = await sensorFor(w, ctx.requestId);
    for (const [i, r] of read.entries()) {
      if (!r.ok) continue;
      ids.push(String(await storeAlert(actor, w, r.alert, body[i], sensorId, now, ctx)));
    }
    const updated = await repo.updateWatcher(w.id, { lastPushAt: now, lastAddress: ctx.address });
    if (updated) cache.set(w.id, { row: updated, at: Date.now() });
    return ids;
  };

  /** GET /v1/alerts (CrowdSec's search parameters that map onto what is stored). */
  const listAlerts = async (actor: Actor, q: Record<string, string | undefined>) => {
    await watcherOf(actor);
    const now = clock.now().getTime();
    const when = (v: string | undefined) => {
      if (!v) return undefined;
      const seconds = parseGoDuration(v);
      if (seconds !== undefined) return new Date(now - seconds * 1000);
      const d = new Date(v);
      if (Number.isNaN(d.getTime())) throw LAPI_ERRORS.badRequest(`while parsing duration: ${JSON.stringify(v.slice(0, 50))} is neither a duration nor a date`);
      return d;
    };
    const limit = q.limit ? Math.min(1000, Math.max(1, Number.parseInt(q.limit, 10) || 100)) : 100;
    const value = q.ip ?? q.range ?? q.value;
    const rows = await repo.listAlerts(
      {
        ...(value ? { sourceValue: value } : {}),
        ...(q.scenario ? { scenario: q.scenario } : {}),
        ...(when(q.since) ? { since: when(q.since)! } : {}),
        ...(when(q.until) ? { until: when(q.until)! } : {}),
      },
      limit,
    );
    return rows
      .filter((r) => q.simulated === "true" || !r.simulated)
      .map((r) => ({ ...(r.alert as Record<string, unknown>), id: r.id, machine_id: r.machineId, created_at: rfc3339(r.receivedAt) }));
  };

  /**
   * DELETE /v1/decisions and /v1/decisions/{id}: raises an unblock request for each matching live
   * decision (the policy decides; an ALLOWed, auto-executed one is deleted at once). A filter is
   * required (a bare DELETE would turn every live decision into a request), at most
   * MAX_UNBLOCKS_PER_CALL are raised per call, and each holds the open key
   * unblock_entity:<type>:<value>, so a repeated call finds the open request instead of stacking
   * another. nbDeleted (CrowdSec's field) counts the decisions gone when the answer is sent;
   * nbRequested the unblock requests now open or executed for the matches handled, nbMatched and
   * truncated tell whether more matched than one call handles.
   */
  const deleteDecisions = async (actor: Actor, q: LookupQuery & { scenario?: string | undefined; id?: number | undefined }, ctx: RequestContext) => {
    const w = await watcherOf(actor);
    const has = (v: string | undefined) => v !== undefined && v !== "";
    if (q.id === undefined && !has(q.ip) && !has(q.range) && !has(q.value) && !has(q.scenario))
      throw LAPI_ERRORS.badRequest("a filter is required: ip, range, value (with scope) or scenario; to delete one decision use DELETE /v1/decisions/{decision_id}");
    if (!actions) return { nbDeleted: "0" };
    let found = q.id !== undefined ? await bouncers.findDecisions({ decisionId: q.id }) : await bouncers.findDecisions(q);
    if (q.scenario) found = found.filter((d) => d.scenario === q.scenario);
    let deleted = 0;
    let requested = 0;
    const handled = found.slice(0, MAX_UNBLOCKS_PER_CALL);
    for (const d of handled) {
      const entityType = d.scope === "Ip" ? "ip" : "cidr";
      try {
        const req = await actions.createRequest(
          crowdsecActor(ctx.requestId),
          {
            action_type: "unblock_entity",
            payload: { entity_type: entityType, value: d.value },
            reason: `crowdsec/${w.machineId}: asked to delete decision ${d.id} (${d.scenario})`,
            dry_run: true,
          },
          { openKey: `unblock_entity:${entityType}:${d.value}` },
        );
        requested++;
        if (req.status === "executed") deleted++;
      } catch (error) {
        // Already open (a repeat), denied by the policy, refused by a guardrail: nothing new to raise.
        // Anything else fails the call so the agent retries.
        if (!(error instanceof AppError) || error.status >= 500) throw error;
        if (error.code === "ACTION_ALREADY_OPEN") requested++;
      }
    }
    return { nbDeleted: String(deleted), nbRequested: String(requested), nbMatched: String(found.length), truncated: found.length > handled.length };
  };

  // ---- admin ----
  const find = async (idOrMachine: string): Promise<WatcherRow> => {
    const row = UUID_RE.test(idOrMachine) ? await repo.watcherById(idOrMachine) : await repo.watcherByMachineId(idOrMachine);
    if (!row) throw CROWDSEC_ERRORS.WATCHER_NOT_FOUND(`no watcher ${JSON.stringify(idOrMachine)}`);
    return row;
  };

  const listWatchers = async (actor: Actor): Promise<WatcherView[]> => {
    requirePermission(actor, "enforcement:manage");
    return (await repo.listWatchers()).map(watcherView);
  };

  const validateWatcher = async (actor: Actor, idOrMachine: string): Promise<WatcherView> => {
    requirePermission(actor, "enforcement:manage");
    const existing = await find(idOrMachine);
    if (existing.validated) throw CROWDSEC_ERRORS.WATCHER_ALREADY_VALIDATED(`watcher ${existing.machineId} was validated ${existing.validatedAt?.toISOString() ?? ""} by ${existing.validatedBy ?? "unknown"}`);
    const row = await db.transaction(async (tx) => {
      const updated = await repo.updateWatcher(existing.id, { validated: true, validatedAt: clock.now(), validatedBy: actorName(actor) }, tx);
      if (!updated) throw CROWDSEC_ERRORS.WATCHER_NOT_FOUND(`no watcher ${JSON.stringify(idOrMachine)}`);
      await audit.append(tx, actor, { action: "crowdsec.watcher.validated", target: { type: "crowdsec_watcher", id: updated.id }, before: watcherView(existing), after: watcherView(updated) });
      return updated;
    });
    cache.delete(row.id);
    return watcherView(row);
  };

  const deleteWatcher = async (actor: Actor, idOrMachine: string): Promise<WatcherView> => {
    requirePermission(actor, "enforcement:manage");
    const existing = await find(idOrMachine);
    const row = await db.transaction(async (tx) => {
      const deleted = await repo.deleteWatcher(existing.id, tx);
      if (!deleted) throw CROWDSEC_ERRORS.WATCHER_NOT_FOUND(`no watcher ${JSON.stringify(idOrMachine)}`);
      await audit.append(tx, actor, { action: "crowdsec.watcher.deleted", target: { type: "crowdsec_watcher", id: deleted.id }, before: watcherView(deleted) });
      await changeFeed?.publish(tx);
      return deleted;
    });
    cache.delete(row.id);
    return watcherView(row);
  };

  return { invalidateCache: () => cache.clear(), register, login, authenticate, heartbeat, pushAlerts, listAlerts, deleteDecisions, listWatchers, validateWatcher, deleteWatcher };
};
export type WatchersService = ReturnType<typeof watchersService>;
