// API shapes of the rules domain. Rule documents themselves are validated by the rule language's
// own JSON Schema (validation.ts) so errors carry JSON pointers; these zod schemas frame requests and
// describe responses for OpenAPI.
import { z } from "zod";
import { paginationQuery, pageSchema } from "../../lib/pagination.ts";
import { TARGETS } from "./catalogue.ts";
import { DECISIONS, RULE_MODES } from "./expression.ts";
import { fixtureSchema } from "./rule-tests.ts";

export const RULE_STATUSES = ["DRAFT", "REVIEW", "ACTIVE", "RETIRED", "REJECTED"] as const;

const ruleDocument = z.record(z.string(), z.unknown()).describe("a rule document: name, target, when, outcome, ... (GET /rules/schema; docs/rules.md)");
const decisionInput = z.record(z.string(), z.unknown()).describe("fields from the target's catalogue, nested by their dots (GET /rules/catalogue)");

export const ruleVersionSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    version: z.number().int(),
    status: z.enum(RULE_STATUSES),
    target: z.enum(TARGETS),
    description: z.string(),
    when: z.unknown(),
    outcome: z.enum(DECISIONS),
    approvals: z.number().int().nullable(),
    priority: z.number().int(),
    mode: z.enum(RULE_MODES),
    tags: z.array(z.string()),
    controls: z.array(z.string()),
    author: z.string(),
    author_id: z.string(),
    contributors: z.array(z.string()),
    created_at: z.string(),
    updated_at: z.string(),
    submitted_at: z.string().nullable(),
    review: z
      .object({ reviewer: z.string(), reviewer_id: z.string(), decision: z.enum(["approved", "rejected"]), comment: z.string(), reviewed_at: z.string() })
      .nullable(),
    activated_at: z.string().nullable(),
    activated_by: z.string().nullable(),
    retired_at: z.string().nullable(),
    retired_by: z.string().nullable(),
    retire_reason: z.string().nullable(),
  })
  .meta({ id: "RuleVersion" });
export type RuleVersion = z.infer<typeof ruleVersionSchema>;

export const rulePageSchema = pageSchema(ruleVersionSchema).meta({ id: "RuleVersionPage" });

export const listRulesQuery = z.strictObject({
  ...paginationQuery,
  name: z.string().max(63).optional(),
  status: z.enum(RULE_STATUSES).optional(),
  target: z.enum(TARGETS).optional(),
});
export type ListRulesQuery = z.infer<typeof listRulesQuery>;

export const ruleParams = z.strictObject({ name: z.string().max(200) });
export const versionParams = z.strictObject({ name: z.string().max(200), version: z.coerce.number().int().min(1).max(1_000_000) });

export const createRuleBody = ruleDocument;
export const editRuleBody = z.record(z.string(), z.unknown()).describe("fields of the rule document to change (name cannot change)");
export const reviewBody = z.strictObject({
  decision: z.enum(["approve", "reject"]),
  comment: z.string().trim().min(1).max(2000),
});
export const retireBody = z.strictObject({ reason: z.string().max(1000).optional() }).nullish();

export const ruleHistorySchema = z
  .object({ name: z.string(), active_version: z.number().int().nullable(), versions: z.array(ruleVersionSchema) })
  .meta({ id: "RuleHistory" });

export const diffQuery = z.strictObject({
  from: z.coerce.number().int().min(1).max(1_000_000),
  to: z.coerce.number().int().min(1).max(1_000_000),
});
export const diffSchema = z
  .object({
    name: z.string(),
    from: z.number().int(),
    to: z.number().int(),
    changes: z.array(z.object({ pointer: z.string(), kind: z.enum(["added", "removed", "changed"]), from: z.unknown().optional(), to: z.unknown().optional() })),
  })
  .meta({ id: "RuleDiff" });

const ruleIssueSchema = z.object({ pointer: z.string(), path: z.string(), message: z.string(), keyword: z.string() });
export const validateBody = z.union([
  z.strictObject({ rule: ruleDocument }),
  z.strictObject({ rules: z.array(ruleDocument).min(1).max(500) }),
  z.strictObject({ all: z.literal(true).describe("validate every DRAFT, REVIEW and ACTIVE version stored, against today's catalogue") }),
]);
export const validateResultSchema = z
  .object({
    valid: z.boolean(),
    results: z.array(z.object({ index: z.number().int(), name: z.string().nullable(), version: z.number().int().nullable(), valid: z.boolean(), errors: z.array(ruleIssueSchema) })),
  })
  .meta({ id: "RuleValidation" });

const candidateRef = z.strictObject({ name: z.string().max(63), version: z.number().int().min(1) });
const candidate = z.union([candidateRef, ruleDocument]).describe("a stored version {name, version}, or an unsaved rule document");

export const evaluateBody = z.strictObject({
  target: z.enum(TARGETS).default("action_request"),
  input: decisionInput,
  with: z.array(candidate).max(100).optional().describe("evaluate against the active set with these replacing (by name) or added"),
  without: z.array(z.string().max(63)).max(100).optional().describe("names left out of the set"),
});

const ruleSummarySchema = z.object({
  name: z.string(),
  version: z.number().int().nullable(),
  outcome: z.enum(DECISIONS),
  approvals: z.number().int().nullable(),
  priority: z.number().int(),
  mode: z.enum(RULE_MODES),
});
export const decisionSchema = z
  .object({
    target: z.enum(TARGETS),
    outcome: z.enum(DECISIONS),
    approvals_required: z.number().int(),
    deciding_rule: z.object({ name: z.string(), version: z.number().int().nullable() }).nullable(),
    matched: z.array(ruleSummarySchema),
    shadow_matched: z.array(ruleSummarySchema),
    not_matched: z.array(
      z.object({
        name: z.string(),
        version: z.number().int().nullable(),
        mode: z.enum(RULE_MODES),
        failed_clause: z.object({ pointer: z.string(), op: z.string(), explanation: z.string() }),
      }),
    ),
    default_applied: z.boolean(),
    derived: z.record(z.string(), z.unknown()),
    input: z.record(z.string(), z.unknown()),
  })
  .meta({ id: "RuleDecision" });

export const recordedDecisionSchema = z
  .object({
    id: z.string(),
    decided_at: z.string(),
    target: z.enum(TARGETS),
    subject: z.object({ type: z.string(), id: z.string() }).nullable(),
    actor: z.string(),
    input: z.record(z.string(), z.unknown()),
    outcome: z.enum(DECISIONS),
    approvals_required: z.number().int(),
    default_applied: z.boolean(),
    deciding_rule: z.object({ name: z.string(), version: z.number().int().nullable() }).nullable(),
    matched: z.array(ruleSummarySchema),
    shadow_matched: z.array(ruleSummarySchema),
    rule_versions: z.array(z.object({ name: z.string(), version: z.number().int().nullable() })),
  })
  .meta({ id: "RecordedRuleDecision" });

export const simulateBody = z.strictObject({
  with: z.array(candidate).max(100).default([]),
  without: z.array(z.string().max(63)).max(100).default([]),
  since: z.string().max(64).describe("ISO 8601 time, or a duration before now such as 7d, 24h, 30m"),
  until: z.string().max(64).optional().describe("ISO 8601 time; default now"),
  target: z.enum(TARGETS).optional().describe("only decisions for this target"),
  examples: z.number().int().min(0).max(50).default(5),
});

const flipExample = z.object({
  decision_id: z.string(),
  decided_at: z.string(),
  subject: z.object({ type: z.string(), id: z.string() }).nullable(),
  from: z.enum(DECISIONS),
  to: z.enum(DECISIONS),
  approvals_from: z.number().int(),
  approvals_to: z.number().int(),
  matched_before: z.array(z.string()),
  matched_after: z.array(z.string()),
  deciding_rule_after: z.string().nullable(),
});
export const simulationSchema = z
  .object({
    since: z.string(),
    until: z.string(),
    decisions: z.number().int(),
    unchanged: z.number().int(),
    changed: z.number().int(),
    flips: z.array(z.object({ from: z.enum(DECISIONS), to: z.enum(DECISIONS), count: z.number().int(), examples: z.array(flipExample) })),
    approvals_changed: z.object({ count: z.number().int(), examples: z.array(flipExample) }),
    truncated: z.boolean(),
    candidate: z.array(z.object({ name: z.string(), version: z.number().int().nullable(), source: z.enum(["active", "stored", "given"]), mode: z.enum(RULE_MODES) })),
  })
  .meta({ id: "RuleSimulation" });
export type Simulation = z.infer<typeof simulationSchema>;

export const catalogueSchema = z
  .record(
    z.string(),
    z.array(
      z.object({
        field: z.string(),
        type: z.string(),
        enum: z.array(z.string()).optional(),
        derived: z.boolean(),
        description: z.string(),
        supplied_by: z.string().nullable(),
      }),
    ),
  )
  .meta({ id: "RuleFieldCatalogue" });

export const schemaQuery = z.strictObject({ target: z.enum(TARGETS).default("action_request") });

export const testBody = z.strictObject({
  fixtures: z.array(fixtureSchema).min(1).max(5000),
  with: z.array(candidate).max(100).default([]),
  without: z.array(z.string().max(63)).max(100).default([]),
  coverage: z.boolean().default(false),
});
export const testReportSchema = z
  .object({
    total: z.number().int(),
    passed: z.number().int(),
    failures: z.array(z.object({ name: z.string(), file: z.string().optional(), problems: z.array(z.string()), outcome: z.enum(DECISIONS).optional() })),
    coverage: z
      .object({
        rules: z.array(z.object({ name: z.string(), version: z.number().int().nullable(), matched: z.number().int(), not_matched: z.number().int() })),
        branches: z.array(z.object({ rule: z.string(), pointer: z.string(), op: z.string(), text: z.string(), true: z.number().int(), false: z.number().int() })),
        covered: z.number().int(),
        total: z.number().int(),
        percent: z.number(),
      })
      .optional(),
  })
  .meta({ id: "RuleTestReport" });
