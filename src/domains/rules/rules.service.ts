// Policy-as-code rules: the version lifecycle (draft, edit, submit, review by someone other than the
// authors, activate, retire), every transition audited in its transaction; the compiled engine each
// node holds in memory (rebuilt and swapped on activation, and on other nodes through LISTEN/NOTIFY);
// decisions (explained, optionally recorded for replay); rule validation; and simulation of a
// candidate rule set against recorded decisions.
import { sql } from "drizzle-orm";
import type { Database, Tx } from "../../db/client.ts";
import { isUniqueViolation } from "../../db/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { COMMON_ERRORS, defineErrors } from "../../lib/errors.ts";
import { decodeCursor, toPage, type Page } from "../../lib/pagination.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { actorIdentity, requirePermission, type Actor } from "../identity/principal.ts";
import { CATALOGUE, TARGETS, type Target } from "./catalogue.ts";
import { CompiledRuleSet, type DecisionInput, type EngineDecision } from "./engine.ts";
import { withDefaults, type Decision, type RuleBody, type RuleDocument, type RuleMode } from "./expression.ts";
import type { RuleRow, RulesRepo, RuleStatus } from "./rules.repo.ts";
import type { ListRulesQuery, RuleVersion, Simulation } from "./rules.schemas.ts";
import { ruleJsonSchema, validateInput, validateRuleDocument, type RuleIssue } from "./validation.ts";
import { runRuleTests, type Fixture, type RuleTestReport } from "./rule-tests.ts";

export const RULES_ERRORS = defineErrors({
  RULE_INVALID: { status: 400, title: "Invalid rule" },
  RULE_INPUT_INVALID: { status: 400, title: "Invalid decision input" },
  RULE_FOUR_EYES: { status: 403, title: "Four-eyes rule" },
  RULE_NOT_FOUND: { status: 404, title: "Rule not found" },
  RULE_DRAFT_EXISTS: { status: 409, title: "A draft of this rule exists" },
  RULE_STATUS_CONFLICT: { status: 409, title: "Rule is not in the required status" },
  RULE_NOT_APPROVED: { status: 409, title: "Rule version is not approved" },
  RULE_ACTIVATION_CONFLICT: { status: 409, title: "Another version was activated at the same time" },
});

export type RulesSettings = {
  defaultOutcome: Decision;
  defaultApprovals: number;
  simulationMaxDecisions: number;
  protectedNetworks: readonly string[];
};

export type DecisionSubject = { type: string; id: string };
export type ExplainedDecision = EngineDecision & { input: DecisionInput };
export type RecordedDecision = ExplainedDecision & { decision_id: string };

const RULES_CHANNEL = "portcullis_rules";

type Deps = {
  db: Database;
  repo: RulesRepo;
  audit: Pick<AuditService, "append">;
  clock: Clock;
  settings: RulesSettings;
  log?: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
};

const identityKey = (actor: Actor) => {
  const who = actorIdentity(actor);
  return `${who.type}:${who.id}`;
};
const displayName = (actor: Actor) => actorIdentity(actor).name;
const iso = (d: Date | null) => d?.toISOString() ?? null;

export const toRuleVersion = (row: RuleRow): RuleVersion => {
  const body = row.body as RuleBody;
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    status: row.status as RuleStatus,
    target: row.target as Target,
    description: body.description,
    when: body.when,
    outcome: body.outcome,
    approvals: body.approvals,
    priority: body.priority,
    mode: body.mode,
    tags: body.tags,
    controls: body.controls,
    author: row.authorName,
    author_id: row.authorId,
    contributors: row.contributors,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    submitted_at: iso(row.submittedAt),
    review:
      row.reviewDecision && row.reviewerId
        ? {
            reviewer: row.reviewerName ?? row.reviewerId,
            reviewer_id: row.reviewerId,
            decision: row.reviewDecision as "approved" | "rejected",
            comment: row.reviewComment ?? "",
            reviewed_at: row.reviewedAt!.toISOString(),
          }
        : null,
    activated_at: iso(row.activatedAt),
    activated_by: row.activatedBy,
    retired_at: iso(row.retiredAt),
    retired_by: row.retiredBy,
    retire_reason: row.retireReason,
  };
};

/** The stored body as the document a person would write (defaults left in, approvals only when meaningful). */
export const documentOf = (body: RuleBody): RuleDocument => {
  const { approvals, ...rest } = body;
  return approvals === null ? rest : { ...rest, approvals };
};

const invalid = (issues: RuleIssue[], prefix = "") => {
  const errors = issues.map((i) => ({ ...i, pointer: `${prefix}${i.pointer}`, path: [prefix.split("/").filter(Boolean).join("."), i.path].filter(Boolean).join(".") }));
  return RULES_ERRORS.RULE_INVALID(errors.map((e) => `${e.pointer || "(root)"}: ${e.message}`).join("; "), { errors });
};

const statusConflict = (row: RuleRow, wanted: string) =>
  RULES_ERRORS.RULE_STATUS_CONFLICT(`rule ${row.name} version ${row.version} is ${row.status}; ${wanted}`, { status: row.status, name: row.name, version: row.version });

const DURATION = /^(\d{1,6})(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** JSON differences between two values as pointer-addressed changes. */
export const diffJson = (a: unknown, b: unknown, pointer = "", out: { pointer: string; kind: "added" | "removed" | "changed"; from?: unknown; to?: unknown }[] = []) => {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  if (JSON.stringify(a) === JSON.stringify(b)) return out;
  if (isObj(a) && isObj(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const at = `${pointer}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`;
      if (!(k in b)) out.push({ pointer: at, kind: "removed", from: a[k] });
      else if (!(k in a)) out.push({ pointer: at, kind: "added", to: b[k] });
      else diffJson(a[k], b[k], at, out);
    }
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const at = `${pointer}/${i}`;
      if (i >= b.length) out.push({ pointer: at, kind: "removed", from: a[i] });
      else if (i >= a.length) out.push({ pointer: at, kind: "added", to: b[i] });
      else diffJson(a[i], b[i], at, out);
    }
    return out;
  }
  out.push({ pointer: pointer || "/", kind: "changed", from: a, to: b });
  return out;
};

type CandidateInput = Record<string, unknown>;
type CandidateRule = { body: RuleBody; version: number | null; source: "active" | "stored" | "given" };

export const rulesService = ({ db, repo, audit, clock, settings, log }: Deps) => {
  const engineOptions = {
    protectedNetworks: settings.protectedNetworks,
    defaultOutcome: { decision: settings.defaultOutcome, approvals: settings.defaultApprovals },
  };

  const compile = (target: Target, rules: readonly { body: RuleBody; version: number | null; label?: string }[]) => {
    const ok: { body: RuleBody; version: number | null }[] = [];
    for (const rule of rules) {
      // A stored rule that today's catalogue refuses (after an upgrade) is left out and reported loudly;
      // `portcullis rules validate --all` finds these before an upgrade.
      const issues = validateRuleDocument(documentOf(rule.body));
      if (issues.length) {
        log?.error({ rule: rule.body.name, version: rule.version, issues }, "an active rule no longer validates and is not enforced");
        continue;
      }
      ok.push(rule);
    }
    return new CompiledRuleSet(target, ok, engineOptions);
  };

  // The engine in use: one immutable compiled set per target, replaced whole (one assignment).
  let engines: Record<Target, CompiledRuleSet> = Object.fromEntries(TARGETS.map((t) => [t, new CompiledRuleSet(t, [], engineOptions)])) as Record<Target, CompiledRuleSet>;
  let loadedVersions: { name: string; version: number; mode: RuleMode }[] = [];

  // Reloads run one after another, so an older snapshot never replaces a newer one.
  let reloads: Promise<unknown> = Promise.resolve();
  const reload = (): Promise<void> => {
    const run = reloads.then(reloadOnce, reloadOnce);
    reloads = run.catch(() => undefined);
    return run;
  };
  const reloadOnce = async (): Promise<void> => {
    const rows = await repo.active();
    const next = {} as Record<Target, CompiledRuleSet>;
    for (const target of TARGETS)
      next[target] = compile(
        target,
        rows.filter((r) => r.target === target).map((r) => ({ body: r.body as RuleBody, version: r.version })),
      );
    engines = next;
    loadedVersions = rows.map((r) => ({ name: r.name, version: r.version, mode: (r.body as RuleBody).mode }));
  };

  const publish = async (tx: Tx, name: string) => {
    if (db.kind === "postgres") await tx.execute(sql`SELECT pg_notify(${RULES_CHANNEL}, ${name})`);
  };

  let stopListening: (() => Promise<void>) | undefined;
  /** Follows other nodes' activations (PostgreSQL), then loads the active set. LISTEN first: nothing is missed. */
  const start = async () => {
    if (db.kind === "postgres") {
      const onChange = () => void reload().catch((err: unknown) => log?.error({ err }, "reloading the rule set failed"));
      stopListening = await db.listen(RULES_CHANNEL, onChange, onChange);
    }
    await reload();
  };
  const stop = async () => {
    await stopListening?.();
  };

  const mustGet = async (name: string, version: number, tx?: Tx) => {
    const row = await repo.get(name, version, tx, tx !== undefined);
    if (!row) throw RULES_ERRORS.RULE_NOT_FOUND(`no rule ${name} version ${version}`);
    return row;
  };

  // ---- lifecycle ---------------------------------------------------------------------------------

  const createDraft = async (actor: Actor, doc: unknown): Promise<RuleVersion> => {
    requirePermission(actor, "rules:write");
    const issues = validateRuleDocument(doc);
    if (issues.length) throw invalid(issues);
    const body = withDefaults(doc as RuleDocument);
    const now = clock.now();
    try {
      return await db.transaction(async (tx) => {
        const draft = await repo.findByStatus(body.name, "DRAFT", tx);
        if (draft)
          throw RULES_ERRORS.RULE_DRAFT_EXISTS(`rule ${body.name} already has a draft (version ${draft.version}); edit it instead`, { name: body.name, version: draft.version });
        const version = (await repo.latestVersion(body.name, tx)) + 1;
        const row = await repo.insert(
          {
            id: uuidv7(),
            name: body.name,
            version,
            status: "DRAFT",
            target: body.target,
            body,
            authorId: identityKey(actor),
            authorName: displayName(actor),
            contributors: [identityKey(actor)],
            createdAt: now,
            updatedAt: now,
            submittedAt: null,
            reviewerId: null,
            reviewerName: null,
            reviewDecision: null,
            reviewComment: null,
            reviewedAt: null,
            activatedAt: null,
            activatedBy: null,
            retiredAt: null,
            retiredBy: null,
            retireReason: null,
          },
          tx,
        );
        const after = toRuleVersion(row);
        await audit.append(tx, actor, { action: "rules.version.created", target: { type: "rule", id: row.name }, after });
        return after;
      });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      throw RULES_ERRORS.RULE_DRAFT_EXISTS(`rule ${body.name} got a new draft from another request just now; edit it instead`, { name: body.name });
    }
  };

  const editDraft = async (actor: Actor, name: string, version: number, patch: Record<string, unknown>): Promise<RuleVersion> => {
    requirePermission(actor, "rules:write");
    if (patch.name !== undefined && patch.name !== name) throw invalid([{ pointer: "/name", path: "name", message: "a rule's name cannot change; create a rule with the new name", keyword: "immutable" }]);
    return db.transaction(async (tx) => {
      const row = await mustGet(name, version, tx);
      if (row.status !== "DRAFT") throw statusConflict(row, "only a DRAFT can be edited (a submitted version is immutable; create a new draft)");
      const current = documentOf(row.body as RuleBody) as Record<string, unknown>;
      const merged: Record<string, unknown> = { ...current, ...patch };
      if (patch.outcome !== undefined && patch.outcome !== "REQUIRE_APPROVAL" && patch.approvals === undefined) delete merged.approvals;
      const issues = validateRuleDocument(merged);
      if (issues.length) throw invalid(issues);
      const body = withDefaults(merged as RuleDocument);
      const before = toRuleVersion(row);
      const contributors = [...new Set([...row.contributors, identityKey(actor)])];
      const updated = await repo.transition(row.id, "DRAFT", { body, target: body.target, contributors, updatedAt: clock.now() }, tx);
      if (!updated) throw statusConflict((await repo.get(name, version, tx))!, "only a DRAFT can be edited");
      const after = toRuleVersion(updated);
      await audit.append(tx, actor, { action: "rules.version.edited", target: { type: "rule", id: name }, before, after });
      return after;
    });
  };

  const submit = async (actor: Actor, name: string, version: number): Promise<RuleVersion> => {
    requirePermission(actor, "rules:write");
    return db.transaction(async (tx) => {
      const row = await mustGet(name, version, tx);
      if (row.status !== "DRAFT") throw statusConflict(row, "only a DRAFT can be submitted for review");
      const now = clock.now();
      const updated = (await repo.transition(row.id, "DRAFT", { status: "REVIEW", submittedAt: now, updatedAt: now }, tx))!;
      await audit.append(tx, actor, { action: "rules.version.submitted", target: { type: "rule", id: name }, before: toRuleVersion(row), after: toRuleVersion(updated) });
      return toRuleVersion(updated);
    });
  };

  const review = async (actor: Actor, name: string, version: number, input: { decision: "approve" | "reject"; comment: string }): Promise<RuleVersion> => {
    requirePermission(actor, "rules:review");
    return db.transaction(async (tx) => {
      const row = await mustGet(name, version, tx);
      if (row.status !== "REVIEW" || row.reviewDecision !== null)
        throw statusConflict(row, row.reviewDecision ? `it was already ${row.reviewDecision} by ${row.reviewerName}` : "only a version submitted for review can be reviewed");
      const me = identityKey(actor);
      if (row.authorId === me || row.contributors.includes(me))
        throw RULES_ERRORS.RULE_FOUR_EYES(`you wrote or edited rule ${name} version ${version}; someone else must review it`, { name, version });
      const now = clock.now();
      const approved = input.decision === "approve";
      const updated = (await repo.transition(
        row.id,
        "REVIEW",
        {
          status: approved ? "REVIEW" : "REJECTED",
          reviewerId: me,
          reviewerName: displayName(actor),
          reviewDecision: approved ? "approved" : "rejected",
          reviewComment: input.comment,
          reviewedAt: now,
          updatedAt: now,
        },
        tx,
      ))!;
      await audit.append(tx, actor, {
        action: approved ? "rules.version.approved" : "rules.version.rejected",
        target: { type: "rule", id: name },
        before: toRuleVersion(row),
        after: toRuleVersion(updated),
        details: { comment: input.comment },
      });
      return toRuleVersion(updated);
    });
  };

  const activate = async (actor: Actor, name: string, version: number): Promise<RuleVersion> => {
    requirePermission(actor, "rules:activate");
    let result: RuleVersion;
    try {
      result = await db.transaction(async (tx) => {
        const row = await mustGet(name, version, tx);
        if (row.status !== "REVIEW") throw statusConflict(row, "only a reviewed version can be activated");
        if (row.reviewDecision !== "approved" || !row.reviewerId)
          throw RULES_ERRORS.RULE_NOT_APPROVED(`rule ${name} version ${version} has not been approved by a reviewer yet`, { name, version });
        // Checked at review time too; kept here (and in the table's CHECK) so no path skips it.
        if (row.reviewerId === row.authorId || row.contributors.includes(row.reviewerId))
          throw RULES_ERRORS.RULE_FOUR_EYES(`rule ${name} version ${version} was reviewed by one of its authors`, { name, version });
        const now = clock.now();
        const by = displayName(actor);
        const previous = await repo.findByStatus(name, "ACTIVE", tx);
        if (previous) {
          // Conditional: if a concurrent activation retired it first, this updates nothing, and the
          // one-ACTIVE index below decides which activation wins.
          const retired = await repo.transition(previous.id, "ACTIVE", { status: "RETIRED", retiredAt: now, retiredBy: by, retireReason: `replaced by version ${version}`, updatedAt: now }, tx);
          if (retired)
            await audit.append(tx, actor, { action: "rules.version.retired", target: { type: "rule", id: name }, before: toRuleVersion(previous), after: toRuleVersion(retired), details: { replaced_by: version } });
        }
        const updated = await repo.transition(row.id, "REVIEW", { status: "ACTIVE", activatedAt: now, activatedBy: by, updatedAt: now }, tx);
        if (!updated) throw statusConflict((await repo.get(name, version, tx))!, "it was activated or retired by another request just now");
        const after = toRuleVersion(updated);
        await audit.append(tx, actor, { action: "rules.version.activated", target: { type: "rule", id: name }, before: toRuleVersion(row), after, details: { replaced: previous?.version ?? null } });
        await publish(tx, name);
        return after;
      });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      const winner = await repo.findByStatus(name, "ACTIVE");
      throw RULES_ERRORS.RULE_ACTIVATION_CONFLICT(
        `another version of rule ${name} (${winner ? `version ${winner.version}` : "unknown"}) was activated at the same time; only one version can be ACTIVE`,
        { name, version, active_version: winner?.version ?? null },
      );
    }
    await reload();
    return result;
  };

  const retire = async (actor: Actor, name: string, version: number, reason?: string): Promise<RuleVersion> => {
    requirePermission(actor, "rules:activate");
    const result = await db.transaction(async (tx) => {
      const row = await mustGet(name, version, tx);
      if (!["ACTIVE", "DRAFT", "REVIEW"].includes(row.status)) throw statusConflict(row, "only an ACTIVE, DRAFT or REVIEW version can be retired");
      const now = clock.now();
      const updated = await repo.transition(row.id, row.status as RuleStatus, { status: "RETIRED", retiredAt: now, retiredBy: displayName(actor), retireReason: reason ?? null, updatedAt: now }, tx);
      if (!updated) throw statusConflict((await repo.get(name, version, tx))!, "it changed status just now");
      await audit.append(tx, actor, { action: "rules.version.retired", target: { type: "rule", id: name }, before: toRuleVersion(row), after: toRuleVersion(updated), details: reason ? { reason } : undefined });
      if (row.status === "ACTIVE") await publish(tx, name);
      return { after: toRuleVersion(updated), wasActive: row.status === "ACTIVE" };
    });
    if (result.wasActive) await reload();
    return result.after;
  };

  // ---- reads -------------------------------------------------------------------------------------

  const list = async (actor: Actor, query: ListRulesQuery): Promise<Page<RuleVersion>> => {
    requirePermission(actor, "rules:read");
    const rows = await repo.list({ name: query.name, status: query.status, target: query.target }, query.limit + 1, decodeCursor(query.cursor));
    return toPage(rows, query.limit, (r) => ({ t: r.createdAt.toISOString(), id: r.id }), toRuleVersion);
  };

  const history = async (actor: Actor, name: string) => {
    requirePermission(actor, "rules:read");
    const rows = await repo.versionsOf(name);
    if (rows.length === 0) throw RULES_ERRORS.RULE_NOT_FOUND(`no rule named ${name}`);
    return { name, active_version: rows.find((r) => r.status === "ACTIVE")?.version ?? null, versions: rows.map(toRuleVersion) };
  };

  const getVersion = async (actor: Actor, name: string, version: number) => {
    requirePermission(actor, "rules:read");
    return toRuleVersion(await mustGet(name, version));
  };

  const diff = async (actor: Actor, name: string, from: number, to: number) => {
    requirePermission(actor, "rules:read");
    const [a, b] = await Promise.all([mustGet(name, from), mustGet(name, to)]);
    return { name, from, to, changes: diffJson(documentOf(a.body as RuleBody), documentOf(b.body as RuleBody)) };
  };

  const catalogue = (actor: Actor) => {
    requirePermission(actor, "rules:read");
    return Object.fromEntries(
      TARGETS.map((t) => [
        t,
        Object.entries(CATALOGUE[t]).map(([field, spec]) => ({
          field,
          type: spec.type,
          ...(spec.enum ? { enum: [...spec.enum] } : {}),
          derived: spec.derived === true,
          description: spec.description,
          supplied_by: spec.suppliedBy ?? null,
        })),
      ]),
    );
  };

  const schema = (actor: Actor, target: Target) => {
    requirePermission(actor, "rules:read");
    return ruleJsonSchema(target);
  };

  const validate = async (actor: Actor, body: { rule: unknown } | { rules: unknown[] } | { all: true }) => {
    requirePermission(actor, "rules:read");
    let items: { doc: unknown; name: string | null; version: number | null }[];
    if ("all" in body) items = (await repo.live()).map((r) => ({ doc: documentOf(r.body as RuleBody), name: r.name, version: r.version }));
    else {
      const docs = "rule" in body ? [body.rule] : body.rules;
      items = docs.map((doc) => ({ doc, name: typeof (doc as { name?: unknown })?.name === "string" ? (doc as { name: string }).name : null, version: null }));
    }
    const results = items.map((item, index) => {
      const errors = validateRuleDocument(item.doc);
      return { index, name: item.name, version: item.version, valid: errors.length === 0, errors };
    });
    return { valid: results.every((r) => r.valid), results };
  };

  // ---- decisions ---------------------------------------------------------------------------------

  /** The input as decided on: validated, with time.now from the clock when the caller gave none. */
  const effectiveInput = (target: Target, input: DecisionInput): DecisionInput => {
    const issues = validateInput(target, input);
    if (issues.length)
      throw RULES_ERRORS.RULE_INPUT_INVALID(issues.map((i) => `input ${i.path || "(root)"}: ${i.message}`).join("; "), {
        errors: issues.map((i) => ({ ...i, pointer: `/input${i.pointer}`, path: `input${i.path ? `.${i.path}` : ""}` })),
      });
    const time = input.time as Record<string, unknown> | undefined;
    if (time?.now !== undefined) return input;
    return { ...input, time: { ...(time ?? {}), now: clock.now().toISOString() } };
  };

  /** The active set with candidates replacing (by name) or joining it, and names left out. */
  const candidateRules = async (withRules: readonly CandidateInput[], without: readonly string[]): Promise<CandidateRule[]> => {
    const byName = new Map<string, CandidateRule>();
    for (const row of await repo.active()) byName.set(row.name, { body: row.body as RuleBody, version: row.version, source: "active" });
    for (const [k, item] of withRules.entries()) {
      const keys = Object.keys(item);
      if (keys.length === 2 && typeof item.name === "string" && typeof item.version === "number") {
        const row = await repo.get(item.name, item.version);
        if (!row) throw RULES_ERRORS.RULE_NOT_FOUND(`with[${k}]: no rule ${item.name} version ${item.version}`);
        byName.set(row.name, { body: row.body as RuleBody, version: row.version, source: "stored" });
        continue;
      }
      const issues = validateRuleDocument(item);
      if (issues.length) throw invalid(issues, `/with/${k}`);
      const body = withDefaults(item as unknown as RuleDocument);
      byName.set(body.name, { body, version: null, source: "given" });
    }
    for (const name of without) byName.delete(name);
    return [...byName.values()];
  };

  const explained = (set: CompiledRuleSet, input: DecisionInput): ExplainedDecision => ({ ...set.decide(input, { explain: true }), input });

  /** What the engine decides for `input` right now (the action workflow's question), explained. */
  const decide = (actor: Actor, target: Target, input: DecisionInput): ExplainedDecision => {
    requirePermission(actor, "rules:read");
    const effective = effectiveInput(target, input);
    return explained(engines[target], effective);
  };

  /** Decides and stores the decision with its full input and the rule versions used, in `tx`. */
  const decideAndRecord = async (tx: Tx, actor: Actor, target: Target, input: DecisionInput, subject?: DecisionSubject): Promise<RecordedDecision> => {
    requirePermission(actor, "rules:read");
    const effective = effectiveInput(target, input);
    const set = engines[target];
    const decision = explained(set, effective);
    const id = uuidv7();
    const who = actorIdentity(actor);
    await repo.insertDecision(
      {
        id,
        decidedAt: clock.now(),
        target,
        subjectType: subject?.type ?? null,
        subjectId: subject?.id ?? null,
        actorType: who.type,
        actorId: who.id,
        actorName: who.name,
        input: effective,
        outcome: decision.outcome,
        approvalsRequired: decision.approvals_required,
        defaultApplied: decision.default_applied,
        decidingRule: decision.deciding_rule,
        matched: decision.matched,
        shadowMatched: decision.shadow_matched,
        ruleVersions: set.rules.map((r) => ({ name: r.name, version: r.version })),
      },
      tx,
    );
    if (decision.shadow_matched.length)
      log?.warn({ decision_id: id, shadow_matched: decision.shadow_matched.map((m) => `${m.name}@${m.version}`), outcome: decision.outcome }, "shadow rules matched (not enforced)");
    return { ...decision, decision_id: id };
  };

  /** POST /rules/evaluate: explain a decision without recording it, optionally against candidates. */
  const evaluate = async (actor: Actor, body: { target: Target; input: DecisionInput; with?: CandidateInput[] | undefined; without?: string[] | undefined }): Promise<ExplainedDecision> => {
    requirePermission(actor, "rules:read");
    const effective = effectiveInput(body.target, body.input);
    if (!body.with?.length && !body.without?.length) return explained(engines[body.target], effective);
    const rules = (await candidateRules(body.with ?? [], body.without ?? [])).filter((r) => r.body.target === body.target);
    return explained(new CompiledRuleSet(body.target, rules, engineOptions), effective);
  };

  const getDecision = async (actor: Actor, id: string) => {
    requirePermission(actor, "rules:read");
    const row = /^[0-9a-f-]{36}$/i.test(id) ? await repo.getDecision(id) : undefined;
    if (!row) throw COMMON_ERRORS.NOT_FOUND(`no recorded decision with id ${id}`);
    return {
      id: row.id,
      decided_at: row.decidedAt.toISOString(),
      target: row.target as Target,
      subject: row.subjectType && row.subjectId ? { type: row.subjectType, id: row.subjectId } : null,
      actor: row.actorName,
      input: row.input as Record<string, unknown>,
      outcome: row.outcome as Decision,
      approvals_required: row.approvalsRequired,
      default_applied: row.defaultApplied,
      deciding_rule: row.decidingRule as { name: string; version: number | null } | null,
      matched: row.matched as EngineDecision["matched"],
      shadow_matched: row.shadowMatched as EngineDecision["shadow_matched"],
      rule_versions: row.ruleVersions as { name: string; version: number | null }[],
    };
  };

  const parseSince = (text: string, now: Date, field: string): Date => {
    const m = DURATION.exec(text);
    if (m) return new Date(now.getTime() - Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
    const t = Date.parse(text);
    if (/^\d{4}-\d{2}-\d{2}T/.test(text) && !Number.isNaN(t)) return new Date(t);
    throw COMMON_ERRORS.VALIDATION_FAILED(`${field}: "${text}" is neither an ISO 8601 time nor a duration like 7d, 24h, 30m`, { errors: [{ path: field, message: "not an ISO 8601 time or a duration like 7d" }] });
  };

  /** Replays recorded decisions in [since, until) against the candidate set and counts the flips. */
  const simulate = async (
    actor: Actor,
    body: { with: CandidateInput[]; without: string[]; since: string; until?: string | undefined; target?: Target | undefined; examples: number },
  ): Promise<Simulation> => {
    requirePermission(actor, "rules:read");
    const now = clock.now();
    const since = parseSince(body.since, now, "since");
    const until = body.until ? parseSince(body.until, now, "until") : now;
    const rules = await candidateRules(body.with, body.without);
    const sets = Object.fromEntries(TARGETS.map((t) => [t, new CompiledRuleSet(t, rules.filter((r) => r.body.target === t), engineOptions)])) as Record<Target, CompiledRuleSet>;
    const max = settings.simulationMaxDecisions;
    const rows = await repo.decisionsBetween(since, until, max + 1, body.target);
    const truncated = rows.length > max;
    const flips = new Map<string, Simulation["flips"][number]>();
    const approvalsChanged: Simulation["approvals_changed"] = { count: 0, examples: [] };
    let changed = 0;
    for (const row of rows.slice(0, max)) {
      const after = sets[row.target as Target].decide(row.input as DecisionInput, { explain: false });
      const from = row.outcome as Decision;
      const example = () => ({
        decision_id: row.id,
        decided_at: row.decidedAt.toISOString(),
        subject: row.subjectType && row.subjectId ? { type: row.subjectType, id: row.subjectId } : null,
        from,
        to: after.outcome,
        approvals_from: row.approvalsRequired,
        approvals_to: after.approvals_required,
        matched_before: (row.matched as { name: string }[]).map((m) => m.name),
        matched_after: after.matched.map((m) => m.name),
        deciding_rule_after: after.deciding_rule?.name ?? null,
      });
      if (after.outcome !== from) {
        changed++;
        const key = `${from}>${after.outcome}`;
        let flip = flips.get(key);
        if (!flip) flips.set(key, (flip = { from, to: after.outcome, count: 0, examples: [] }));
        flip.count++;
        if (flip.examples.length < body.examples) flip.examples.push(example());
      } else if (after.approvals_required !== row.approvalsRequired) {
        changed++;
        approvalsChanged.count++;
        if (approvalsChanged.examples.length < body.examples) approvalsChanged.examples.push(example());
      }
    }
    const considered = Math.min(rows.length, max);
    return {
      since: since.toISOString(),
      until: until.toISOString(),
      decisions: considered,
      unchanged: considered - changed,
      changed,
      flips: [...flips.values()].sort((a, b) => b.count - a.count),
      approvals_changed: approvalsChanged,
      truncated,
      candidate: rules.map((r) => ({ name: r.body.name, version: r.version, source: r.source, mode: r.body.mode })).sort((a, b) => a.name.localeCompare(b.name)),
    };
  };

  /** Runs rule-test fixtures against the active set (with candidates) using this server's engine settings. */
  const test = async (actor: Actor, body: { fixtures: Fixture[]; with: CandidateInput[]; without: string[]; coverage: boolean }): Promise<RuleTestReport> => {
    requirePermission(actor, "rules:read");
    const rules = await candidateRules(body.with, body.without);
    const report = runRuleTests(rules, body.fixtures, { ...engineOptions, coverage: body.coverage });
    // The full decision of each failure is long; the problems already quote what decided it.
    return { ...report, failures: report.failures.map(({ decision, ...rest }) => ({ ...rest, ...(decision ? { outcome: decision.outcome } : {}) })) };
  };

  /** The compiled set in use for a target (the workflow and tests read it; never mutate). */
  const engineFor = (target: Target) => engines[target];
  const activeVersions = () => loadedVersions;

  return {
    start,
    stop,
    reload,
    createDraft,
    editDraft,
    submit,
    review,
    activate,
    retire,
    list,
    history,
    getVersion,
    diff,
    catalogue,
    schema,
    validate,
    decide,
    decideAndRecord,
    evaluate,
    getDecision,
    simulate,
    test,
    engineFor,
    activeVersions,
  };
};
export type RulesService = ReturnType<typeof rulesService>;
