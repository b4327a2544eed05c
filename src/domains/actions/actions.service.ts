// The security action workflow: request (policy decision recorded with it), dry-run, signed approvals
// with separation of duties and N distinct approvers, exactly-once execution through the owning
// domain's service, cancellation and expiry. Every transition is one conditional UPDATE in one
// transaction with its history row, its audit entry and its webhook deliveries: of concurrent
// callers exactly one transition happens and the others get 409 ACTION_STATE_CONFLICT.
import type { KeyObject } from "node:crypto";
import type { Database, Tx } from "../../db/client.ts";
import { isUniqueViolation, pgErrorCode } from "../../db/errors.ts";
import { AppError, COMMON_ERRORS, defineErrors, validationError } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { decodeCursor, toPage, type Page } from "../../lib/pagination.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import type { Permission } from "../identity/permissions.ts";
import { ROLE_PERMISSIONS } from "../identity/permissions.ts";
import { actorIdentity, actorName, hasPermission, requirePermission, systemActor, type Actor } from "../identity/principal.ts";
import type { PolicyService } from "../policy/policy.service.ts";
import type { ActionsRepo, ActionRow, ApprovalRow, DeliveryRow, HistoryRow } from "./actions.repo.ts";
import type { ActionDetail, ActionView, CreateActionInput, ListActionsQuery } from "./actions.schemas.ts";
import type { ActionDecisions, StoredDecision } from "./decision.ts";
import { ACTION_TYPE_NAMES, actionType, type ActionServices, type ActionType } from "./registry.ts";
import { payloadHash, signStatement, STATEMENT_KIND, type VerdictStatement } from "./signature.ts";
import type { WebhookEvent, WebhookOutbox } from "./webhooks.ts";

export const ACTION_ERRORS = defineErrors({
  UNKNOWN_ACTION_TYPE: { status: 400, title: "Unknown action type" },
  ACTION_DENIED_BY_POLICY: { status: 403, title: "The policy denies this action" },
  SEPARATION_OF_DUTIES: { status: 403, title: "Separation of duties" },
  ACTION_NOT_FOUND: { status: 404, title: "Action request not found" },
  ACTION_STATE_CONFLICT: { status: 409, title: "The action request is not in a state that allows this" },
  ACTION_EXPIRED: { status: 409, title: "The action request expired" },
  APPROVAL_DUPLICATE: { status: 409, title: "You already gave your verdict on this request" },
  DRY_RUN_REQUIRED: { status: 409, title: "A dry-run is required first" },
  ACTION_EXECUTION_FAILED: { status: 422, title: "Execution failed; the failure is recorded" },
  ACTION_ALREADY_OPEN: { status: 409, title: "An open request with the same key exists" },
});

/** Options of requests the system raises (the sentinel): the evidence stored with it, and its open key. */
export type RequestOptions = {
  evidence?: Record<string, unknown>;
  /** At most one pending or approved request holds a key (database-enforced); a second gets ACTION_ALREADY_OPEN. */
  openKey?: string;
};

export type ActionSettings = {
  ttlSeconds: number;
  ttlOverrides: readonly string[];
  autoExecuteTypes: readonly string[];
  executeOnApprovalTypes: readonly string[];
};

type Deps = {
  db: Database;
  repo: ActionsRepo;
  audit: Pick<AuditService, "append">;
  clock: Clock;
  services: Omit<ActionServices, "rulesTesting">;
  policy: Pick<PolicyService, "getPolicy">;
  decisions: ActionDecisions;
  signing: { privateKey: KeyObject; keyIdHex: string };
  webhooks: Pick<WebhookOutbox, "enqueue">;
  settings: ActionSettings;
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
};

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const iso = (d: Date | null) => d?.toISOString() ?? null;
const OPEN_FOR_DRY_RUN = ["pending", "approved", "dry_run_only"] as const;

export const toActionView = (row: ActionRow): ActionView => ({
  id: row.id,
  action_type: row.actionType,
  payload: row.payload as Record<string, unknown>,
  payload_hash: row.payloadHash,
  reason: row.reason,
  status: row.status as ActionView["status"],
  risk: row.risk as ActionView["risk"],
  requested_by: row.requestedBy,
  requested_by_id: row.requestedById,
  decision: row.decision as StoredDecision,
  approvals_required: row.approvalsRequired,
  approvals_count: row.approvalsCount,
  approved_by: row.approvedBy,
  approved_at: iso(row.approvedAt),
  dry_run: row.dryRun && row.dryRunAt ? { at: row.dryRunAt.toISOString(), report: row.dryRun as Record<string, unknown> } : null,
  result: (row.result as Record<string, unknown> | null) ?? null,
  failure_reason: row.failureReason,
  executed_by: row.executedBy,
  executed_at: iso(row.executedAt),
  closed_by: row.closedBy,
  closed_at: iso(row.closedAt),
  created_at: row.createdAt.toISOString(),
  updated_at: row.updatedAt.toISOString(),
  expires_at: row.expiresAt.toISOString(),
  evidence: (row.evidence as Record<string, unknown> | null) ?? null,
});

const approvalView = (a: ApprovalRow) => ({
  approver: a.approver as { type: string; id: string; name: string },
  verdict: a.verdict as "approve" | "reject",
  note: a.note,
  signed_at: a.signedAt.toISOString(),
  payload_hash: a.payloadHash,
  decision: a.decisionOutcome,
  key_id: a.keyId,
  signature: a.signature,
});

const historyView = (h: HistoryRow) => ({ at: h.at.toISOString(), event: h.event, from: h.fromStatus, to: h.toStatus, actor: h.actor, note: h.note, details: h.details ?? null });

/**
 * Webhook URLs often carry their credential in the path (chat services) or the query: readers of a
 * request see the origin and the first path segment only.
 */
export const maskHookUrl = (url: string): string => {
  try {
    const u = new URL(url);
    const [first, ...rest] = u.pathname.split("/").filter(Boolean);
    return `${u.origin}/${first ?? ""}${rest.length || u.search ? "/…" : ""}`;
  } catch {
    return "(unparseable url)";
  }
};

const deliveryView = (d: DeliveryRow) => ({
  id: d.id,
  event: d.event,
  url: maskHookUrl(d.url),
  status: d.status as "pending" | "delivered" | "failed",
  attempts: d.attempts,
  next_attempt_at: d.status === "pending" ? d.nextAttemptAt.toISOString() : null,
  delivered_at: iso(d.deliveredAt),
  attempt_log: d.attemptLog as { at: string; status_code: number | null; error: string | null; duration_ms: number }[],
});

/** The principal acting with extra permissions that an approved request (or a read-only report) authorises. */
const withGrants = (actor: Actor, grants: readonly Permission[]): Actor => {
  const p = actor.principal;
  if (p.kind === "system" && !p.machine) return actor;
  return { ...actor, principal: { ...p, permissions: new Set([...p.permissions, ...grants]) } };
};

const identityKey = (actor: Actor) => {
  const who = actorIdentity(actor);
  return `${who.type}:${who.id}`;
};

/** A refusal by the domain (its rule, or the database's constraint) is a recorded failure; anything else is a bug or an outage. */
const failureReason = (error: unknown): string | undefined => {
  if (error instanceof AppError && error.status < 500) return `${error.code}: ${error.message}`;
  const state = pgErrorCode(error);
  if (state?.startsWith("23") || state?.startsWith("22")) return `the database refused the change (SQLSTATE ${state})`;
  return undefined;
};

export const actionsService = ({ db, repo, audit, clock, services, policy, decisions, signing, webhooks, settings, log }: Deps) => {
  const ttlByType = new Map(settings.ttlOverrides.map((e) => [e.slice(0, e.indexOf("=")), Number(e.slice(e.indexOf("=") + 1))]));
  for (const type of [...ttlByType.keys(), ...settings.autoExecuteTypes, ...settings.executeOnApprovalTypes])
    if (!actionType(type)) throw new Error(`actions config names an unknown action type "${type}"; types are ${ACTION_TYPE_NAMES.join(", ")}`);
  const ttlOf = (type: string) => ttlByType.get(type) ?? settings.ttlSeconds;
  const serviceSet: ActionServices = { ...services, rulesTesting: (field) => decisions.rulesTesting(systemActor("actions"), field) };

  const notFound = (id: string) => ACTION_ERRORS.ACTION_NOT_FOUND(`no action request with id ${id}`);
  const load = async (id: string, tx?: Tx): Promise<ActionRow> => {
    const row = UUID_RE.test(id) ? await repo.get(id, tx) : undefined;
    if (!row) throw notFound(id);
    return row;
  };
  const specOf = (row: ActionRow): ActionType => {
    const spec = actionType(row.actionType);
    // Only a type removed from the registry after requests of it were stored gets here.
    if (!spec) throw ACTION_ERRORS.UNKNOWN_ACTION_TYPE(`action type ${row.actionType} is no longer registered`);
    return spec;
  };
  const conflict = (row: ActionRow, wanted: string, extra: Record<string, unknown> = {}) => {
    const why =
      row.status === "pending" && wanted === "execute"
        ? `it has ${row.approvalsCount} of the ${row.approvalsRequired} approval(s) it needs`
        : `it is ${row.status}${row.closedBy ? ` (by ${row.closedBy})` : row.executedBy ? ` (by ${row.executedBy})` : ""}`;
    return ACTION_ERRORS.ACTION_STATE_CONFLICT(`cannot ${wanted} action request ${row.id}: ${why}`, {
      status: row.status,
      approvals_count: row.approvalsCount,
      approvals_required: row.approvalsRequired,
      ...extra,
    });
  };

  /** History row, audit entry and webhook deliveries of one transition, in its transaction. */
  const record = async (
    tx: Tx,
    actor: Actor,
    row: ActionRow,
    event: WebhookEvent,
    from: string | null,
    note: string | null,
    details?: Record<string, unknown>,
  ) => {
    const now = clock.now();
    await repo.insertHistory({ id: uuidv7(), requestId: row.id, at: now, event, fromStatus: from, toStatus: row.status, actor: actorName(actor), note, details: details ?? null }, tx);
    await audit.append(tx, actor, {
      action: `actions.request.${event}`,
      target: { type: "action_request", id: row.id },
      before: from === null ? undefined : { status: from },
      after: { status: row.status, action_type: row.actionType, payload_hash: row.payloadHash, approvals_count: row.approvalsCount, approvals_required: row.approvalsRequired },
      details: { ...(note ? { note } : {}), ...(details ?? {}) },
    });
    await webhooks.enqueue(tx, row.id, event, { action: toActionView(row) }, now);
  };

  /** A pending request past its time to live becomes expired now (audited) and the caller is told so. */
  const refuseIfExpired = async (row: ActionRow): Promise<void> => {
    if (row.status !== "pending" || row.expiresAt.getTime() > clock.now().getTime()) return;
    await db.transaction(async (tx) => {
      const [expired] = await repo.expireDue(clock.now(), 1, tx, row.id);
      if (expired) await record(tx, systemActor("expiry"), expired, "expired", "pending", null, { expired_at: expired.expiresAt.toISOString() });
    });
    throw ACTION_ERRORS.ACTION_EXPIRED(`action request ${row.id} expired at ${row.expiresAt.toISOString()} without the approvals it needed`, {
      status: "expired",
      expires_at: row.expiresAt.toISOString(),
    });
  };

  const runDryRun = async (actor: Actor, spec: ActionType, payload: unknown) => {
    const report = await spec.dryRun({ actor: withGrants(actor, spec.readGrants), services: serviceSet, payload, now: clock.now() });
    return { ...report, computed_at: clock.now().toISOString() };
  };

  // ---------------------------------------------------------------- create

  const createRequest = async (actor: Actor, input: CreateActionInput, options: RequestOptions = {}): Promise<ActionView> => {
    requirePermission(actor, "actions:request");
    const spec = actionType(input.action_type);
    if (!spec)
      throw ACTION_ERRORS.UNKNOWN_ACTION_TYPE(`"${input.action_type.slice(0, 64)}" is not an action type; types are ${ACTION_TYPE_NAMES.join(", ")}`, {
        errors: [{ path: "action_type", message: `one of ${ACTION_TYPE_NAMES.join(", ")}` }],
      });
    const parsed = spec.payload.safeParse(input.payload);
    if (!parsed.success) {
      const issues = parsed.error.issues.flatMap((i) => {
        const keys = i.code === "unrecognized_keys" ? i.keys : [];
        const base = ["payload", ...i.path.map(String)].join(".");
        return keys.length ? keys.map((k) => ({ path: `${base}.${k}`, message: "unknown field" })) : [{ path: base, message: i.message }];
      });
      throw validationError(issues);
    }
    const payload = parsed.data as Record<string, unknown>;
    const id = uuidv7();
    const readActor = withGrants(actor, [...spec.readGrants, "rules:read", "policy:read"]);
    // Reads outside the transaction (PGlite runs one transaction at a time; no slow work inside one).
    const subject = await spec.subject({ actor: readActor, services: serviceSet, payload, now: clock.now() });
    const currentPolicy = await policy.getPolicy(withGrants(actor, ["policy:read"]));
    const early = input.dry_run ? await runDryRun(actor, spec, payload) : null;
    const telemetry = await decisions.telemetryFor(subject, clock.now());
    const result = await db.transaction(async (tx) => {
      const now = clock.now();
      const decision = await decisions.decide(tx, readActor, { id, type: spec.type, reason: input.reason, subject, policy: currentPolicy, telemetry });
      if (decision.outcome === "DENY") {
        await audit.append(tx, actor, {
          action: "actions.request.denied",
          target: { type: "action_request", id },
          details: { action_type: spec.type, payload, reason: input.reason, decision_id: decision.decision_id, explanation: decision.explanation },
        });
        return { denied: decision, row: undefined } as const;
      }
      const status = decision.outcome === "ALLOW" ? "approved" : decision.outcome === "DRY_RUN_ONLY" ? "dry_run_only" : "pending";
      const who = actorIdentity(actor);
      const row = await repo.insert(
        {
          id,
          actionType: spec.type,
          payload,
          payloadHash: payloadHash(payload),
          reason: input.reason,
          status,
          risk: spec.risk,
          requestedBy: actorName(actor),
          requestedByType: who.type,
          requestedById: who.id,
          decision,
          decisionOutcome: decision.outcome,
          approvalsRequired: decision.approvals_required,
          approvalsCount: 0,
          approvedBy: status === "approved" ? `policy:${decision.deciding_rule?.name ?? "default"}` : null,
          dryRun: early,
          dryRunAt: early ? now : null,
          result: null,
          failureReason: null,
          executedBy: null,
          closedBy: null,
          createdAt: now,
          updatedAt: now,
          expiresAt: new Date(now.getTime() + ttlOf(spec.type) * 1000),
          approvedAt: status === "approved" ? now : null,
          executedAt: null,
          closedAt: status === "dry_run_only" ? now : null,
          evidence: options.evidence ?? null,
          openKey: options.openKey ?? null,
        },
        tx,
      ).catch((error: unknown) => {
        if (options.openKey && isUniqueViolation(error))
          throw ACTION_ERRORS.ACTION_ALREADY_OPEN(`an open request with key ${options.openKey} exists`, { open_key: options.openKey });
        throw error;
      });
      await record(tx, actor, row, decision.outcome === "DRY_RUN_ONLY" ? "dry_run_only" : "created", null, input.reason || null, {
        decision_id: decision.decision_id,
        outcome: decision.outcome,
        explanation: decision.explanation,
      });
      return { row, denied: undefined } as const;
    });
    if (result.denied) {
      const d = result.denied;
      throw ACTION_ERRORS.ACTION_DENIED_BY_POLICY(`the policy denies this ${spec.type}: ${d.explanation}`, {
        decision: { decision_id: d.decision_id, outcome: d.outcome, deciding_rule: d.deciding_rule, matched: d.matched, explanation: d.explanation },
      });
    }
    let row = result.row;
    // DRY_RUN_ONLY: the simulation is the whole outcome; make sure it exists even when not asked for.
    if (row.status === "dry_run_only" && !row.dryRun) row = await storeDryRun(actor, row, await runDryRun(actor, spec, payload), ["dry_run_only"]);
    if (row.status === "approved" && settings.autoExecuteTypes.includes(spec.type)) return autoExecute(row.id);
    return toActionView(row);
  };

  /** The system executes (auto-execution after ALLOW, or right after the final approval); a failure is already recorded. */
  const autoExecute = async (id: string): Promise<ActionView> => {
    try {
      return await execute(systemActor("actions"), id);
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return toActionView(await load(id));
      throw error;
    }
  };

  // ---------------------------------------------------------------- read

  const listRequests = async (actor: Actor, query: ListActionsQuery): Promise<Page<ActionView>> => {
    requirePermission(actor, "actions:read");
    const rows = await repo.list(
      {
        status: query.status,
        type: query.type,
        requestedBy: query.requested_by,
        createdFrom: query.created_from ? new Date(query.created_from) : undefined,
        createdTo: query.created_to ? new Date(query.created_to) : undefined,
      },
      query.limit + 1,
      decodeCursor(query.cursor),
    );
    return toPage(rows, query.limit, (r) => ({ t: r.createdAt.toISOString(), id: r.id }), toActionView);
  };

  const getRequest = async (actor: Actor, id: string): Promise<ActionDetail> => {
    requirePermission(actor, "actions:read");
    const row = await load(id);
    const [approvals, history, deliveries] = await Promise.all([repo.approvals(row.id), repo.history(row.id), repo.deliveries(row.id)]);
    return { ...toActionView(row), approvals: approvals.map(approvalView), history: history.map(historyView), webhook_deliveries: deliveries.map(deliveryView) };
  };

  // ---------------------------------------------------------------- dry-run

  const storeDryRun = async (actor: Actor, row: ActionRow, report: Record<string, unknown>, from: readonly string[]): Promise<ActionRow> =>
    db.transaction(async (tx) => {
      const now = clock.now();
      const updated = await repo.transition(row.id, from, { dryRun: report, dryRunAt: now, updatedAt: now }, tx);
      if (!updated) throw conflict((await repo.get(row.id, tx)) ?? row, "dry-run");
      await record(tx, actor, updated, "dry_run", updated.status, null, { would_fail: report.would_fail ?? null });
      return updated;
    });

  const dryRun = async (actor: Actor, id: string): Promise<ActionView> => {
    requirePermission(actor, "actions:read");
    if (!hasPermission(actor.principal, "actions:request") && !hasPermission(actor.principal, "actions:approve"))
      throw COMMON_ERRORS.FORBIDDEN("a dry-run needs the permission actions:request or actions:approve", { required_permission: "actions:request" });
    const row = await load(id);
    await refuseIfExpired(row);
    if (!(OPEN_FOR_DRY_RUN as readonly string[]).includes(row.status)) throw conflict(row, "dry-run");
    const report = await runDryRun(actor, specOf(row), row.payload);
    return toActionView(await storeDryRun(actor, row, report, OPEN_FOR_DRY_RUN));
  };

  // ---------------------------------------------------------------- verdicts

  const giveVerdict = async (actor: Actor, id: string, verdict: "approve" | "reject", note: string): Promise<ActionView> => {
    requirePermission(actor, "actions:approve");
    const row = await load(id);
    const me = identityKey(actor);
    // Whatever the state: nobody judges their own request (the requester may cancel it instead).
    if (me === `${row.requestedByType}:${row.requestedById}`)
      throw ACTION_ERRORS.SEPARATION_OF_DUTIES(`you requested action ${row.id}; someone else must ${verdict} it${verdict === "reject" ? " (you may cancel it)" : ""}`);
    await refuseIfExpired(row);
    if (row.status !== "pending") throw conflict(row, verdict);
    const spec = specOf(row);
    if (verdict === "approve" && spec.risk === "high" && !row.dryRun)
      throw ACTION_ERRORS.DRY_RUN_REQUIRED(`${row.actionType} is high-risk: run POST /security/actions/${row.id}/dry-run before approving`);
    if (await repo.findApproval(row.id, me))
      throw ACTION_ERRORS.APPROVAL_DUPLICATE(`you already gave your verdict on action request ${row.id}; it needs ${row.approvalsRequired} distinct approver(s)`);
    const now = clock.now();
    const who = actorIdentity(actor);
    const statement: VerdictStatement = {
      kind: STATEMENT_KIND,
      request_id: row.id,
      action_type: row.actionType,
      payload_hash: row.payloadHash,
      requested_by_id: row.requestedById,
      decision: row.decisionOutcome,
      approvals_required: row.approvalsRequired,
      approver: who,
      verdict,
      note,
      signed_at: now.toISOString(),
    };
    const signature = signStatement(signing.privateKey, statement);
    let updated: ActionRow;
    try {
      updated = await db.transaction(async (tx) => {
        const next =
          verdict === "approve"
            ? await repo.countApproval(row.id, now, actorName(actor), tx)
            : await repo.transition(row.id, ["pending"], { status: "rejected", closedAt: now, closedBy: actorName(actor), updatedAt: now }, tx);
        if (!next) throw conflict((await repo.get(row.id, tx)) ?? row, verdict);
        await repo.insertApproval(
          { id: uuidv7(), requestId: row.id, approverKey: me, approver: who, verdict, note, signedAt: now, payloadHash: row.payloadHash, decisionOutcome: row.decisionOutcome, keyId: signing.keyIdHex, signature },
          tx,
        );
        const event: WebhookEvent = verdict === "reject" ? "rejected" : next.status === "approved" ? "approved" : "approval";
        await record(tx, actor, next, event, "pending", note || null, { verdict, signature, approvals_count: next.approvalsCount, approvals_required: next.approvalsRequired });
        return next;
      });
    } catch (error) {
      // Two verdicts of one approver at once: the second one's insert hits the unique index.
      if (isUniqueViolation(error)) throw ACTION_ERRORS.APPROVAL_DUPLICATE(`you already gave your verdict on action request ${row.id}`);
      throw error;
    }
    if (updated.status === "approved" && settings.executeOnApprovalTypes.includes(updated.actionType)) return autoExecute(updated.id);
    return toActionView(updated);
  };

  const approve = (actor: Actor, id: string, note = "") => giveVerdict(actor, id, "approve", note);
  const reject = (actor: Actor, id: string, note = "") => giveVerdict(actor, id, "reject", note);

  // ---------------------------------------------------------------- execute

  const execute = async (actor: Actor, id: string): Promise<ActionView> => {
    requirePermission(actor, "actions:execute");
    const row = await load(id);
    await refuseIfExpired(row);
    if (row.status !== "approved") throw conflict(row, "execute");
    const spec = specOf(row);
    const acting = withGrants(actor, spec.grants);
    const base = { actor: acting, services: serviceSet, payload: row.payload };
    try {
      const prepared = await spec.prepare({ ...base, now: clock.now() });
      return toActionView(
        await db.transaction(async (tx) => {
          const now = clock.now();
          // The claim: of concurrent executors exactly one gets the row back; the rest answer 409.
          const claimed = await repo.transition(row.id, ["approved"], { status: "executed", executedAt: now, executedBy: actorName(actor), updatedAt: now }, tx);
          if (!claimed) throw conflict((await repo.get(row.id, tx)) ?? row, "execute");
          const result = await spec.execute({ ...base, now, tx, prepared, requestId: row.id, reason: row.reason });
          const done = (await repo.transition(row.id, ["executed"], { result }, tx))!;
          await record(tx, actor, done, "executed", "approved", null, { result });
          return done;
        }),
      );
    } catch (error) {
      if (error instanceof AppError && error.code === "ACTION_STATE_CONFLICT") throw error;
      const reason = failureReason(error);
      if (reason === undefined) throw error;
      // The execution transaction rolled back whole (the domain is unchanged); record the failure.
      const failed = await db.transaction(async (tx) => {
        const now = clock.now();
        const updated = await repo.transition(row.id, ["approved"], { status: "failed", failureReason: reason, executedAt: now, executedBy: actorName(actor), updatedAt: now }, tx);
        if (!updated) throw conflict((await repo.get(row.id, tx)) ?? row, "execute");
        await record(tx, actor, updated, "failed", "approved", null, { reason });
        return updated;
      });
      log?.warn({ action_request: row.id, reason }, "action execution failed");
      throw ACTION_ERRORS.ACTION_EXECUTION_FAILED(`executing ${row.actionType} failed and was recorded: ${reason}`, { action: toActionView(failed) });
    }
  };

  // ---------------------------------------------------------------- cancel, expire

  const cancel = async (actor: Actor, id: string, note = ""): Promise<ActionView> => {
    requirePermission(actor, "actions:request");
    const row = await load(id);
    const isRequester = identityKey(actor) === `${row.requestedByType}:${row.requestedById}`;
    // Admin by what this credential holds, not by its owner's role: a narrow key of an admin is not one.
    const isAdmin = (actor.principal.kind === "system" && !actor.principal.machine) || [...ROLE_PERMISSIONS.admin].every((p) => actor.principal.permissions.has(p));
    if (!isRequester && !isAdmin) throw COMMON_ERRORS.FORBIDDEN(`only the requester (${row.requestedBy}) or an admin may cancel action request ${row.id}`);
    await refuseIfExpired(row);
    if (row.status !== "pending") throw conflict(row, "cancel");
    return toActionView(
      await db.transaction(async (tx) => {
        const now = clock.now();
        const updated = await repo.transition(row.id, ["pending"], { status: "cancelled", closedAt: now, closedBy: actorName(actor), updatedAt: now }, tx);
        if (!updated) throw conflict((await repo.get(row.id, tx)) ?? row, "cancel");
        await record(tx, actor, updated, "cancelled", "pending", note || null);
        return updated;
      }),
    );
  };

  /** The seed's POST /security/actions/{id} {status, note}: one of the verbs. */
  const setStatus = (actor: Actor, id: string, body: { status: "approved" | "rejected" | "executed"; note: string }) =>
    body.status === "approved" ? approve(actor, id, body.note) : body.status === "rejected" ? reject(actor, id, body.note) : execute(actor, id);

  /** Records every pending request past its time to live as expired (system:expiry); returns how many. */
  const sweepExpired = async (): Promise<number> => {
    let total = 0;
    for (;;) {
      const now = clock.now();
      const n = await db.transaction(async (tx) => {
        const expired = await repo.expireDue(now, 200, tx);
        for (const row of expired) await record(tx, systemActor("expiry"), row, "expired", "pending", null, { expired_at: row.expiresAt.toISOString() });
        return expired.length;
      });
      total += n;
      if (n < 200) return total;
    }
  };

  /** The open (pending or approved) request holding `openKey`, if any. */
  const findOpenRequest = async (actor: Actor, openKey: string): Promise<ActionView | undefined> => {
    requirePermission(actor, "actions:read");
    const row = await repo.findOpenByKey(openKey);
    return row && toActionView(row);
  };

  /** Pending requests per action type (the dashboard). */
  const pendingCounts = async (actor: Actor): Promise<Record<string, number>> => {
    requirePermission(actor, "actions:read");
    const rows = await repo.pendingByType();
    return Object.fromEntries(rows.map((r) => [r.type, Number(r.count)]));
  };

  return { createRequest, findOpenRequest, pendingCounts, listRequests, getRequest, dryRun, approve, reject, execute, cancel, setStatus, sweepExpired };
};
export type ActionsService = ReturnType<typeof actionsService>;
