// API shapes of the action workflow (PACK TR field names: action_type, payload, requested_by, approved_by, status).
import { z } from "zod";
import { paginationQuery, pageSchema } from "../../lib/pagination.ts";

export const ACTION_STATUSES = ["pending", "approved", "executed", "failed", "rejected", "cancelled", "expired", "dry_run_only"] as const;
export type ActionStatus = (typeof ACTION_STATUSES)[number];

const isoDateTime = z.iso.datetime({ offset: true });
const json = z.record(z.string(), z.unknown());

export const createActionSchema = z
  .strictObject({
    action_type: z.string().min(1).max(64).describe("one of the registered types (GET /security/actions/types)"),
    payload: json.describe("the type's payload (see docs/actions.md)"),
    reason: z.string().max(2000).default("").describe("why; shown to approvers and given to the policy engine"),
    dry_run: z.boolean().default(true).describe("run the dry-run at creation (the default first step; high-risk types need one before approval)"),
  })
  .meta({ id: "ActionRequestCreate" });
export type CreateActionInput = z.infer<typeof createActionSchema>;

export const listActionsQuery = z.strictObject({
  ...paginationQuery,
  status: z.enum(ACTION_STATUSES).optional(),
  type: z.string().max(64).optional(),
  requested_by: z.string().max(256).optional().describe("username or principal id of the requester"),
  created_from: isoDateTime.optional(),
  created_to: isoDateTime.optional(),
});
export type ListActionsQuery = z.infer<typeof listActionsQuery>;

// Fastify hands a missing body over as null (curl -X POST with no data), so null is accepted too.
export const noteBody = z.strictObject({ note: z.string().max(2000).default("") }).nullish();
export const statusBody = z
  .strictObject({
    status: z.enum(["approved", "rejected", "executed"]),
    note: z.string().max(2000).default(""),
  })
  .meta({ id: "ActionStatusUpdate" });

const decisionSchema = z.object({
  decision_id: z.string(),
  outcome: z.enum(["ALLOW", "REQUIRE_APPROVAL", "DRY_RUN_ONLY", "DENY"]),
  approvals_required: z.number(),
  deciding_rule: z.object({ name: z.string(), version: z.number().nullable() }).nullable(),
  matched: z.array(z.object({ name: z.string(), version: z.number().nullable(), outcome: z.string(), approvals: z.number().nullable(), priority: z.number() })),
  not_matched: z.array(z.object({ name: z.string(), version: z.number().nullable(), explanation: z.string() })),
  default_applied: z.boolean(),
  explanation: z.string(),
  input: json,
});

const principalRef = z.object({ type: z.string(), id: z.string(), name: z.string() });

export const actionSchema = z
  .object({
    id: z.uuid(),
    action_type: z.string(),
    payload: json,
    payload_hash: z.string().describe("SHA-256 (hex) of the payload's RFC 8785 canonical JSON"),
    reason: z.string(),
    status: z.enum(ACTION_STATUSES),
    risk: z.enum(["low", "medium", "high"]),
    requested_by: z.string(),
    requested_by_id: z.string(),
    decision: decisionSchema,
    approvals_required: z.number(),
    approvals_count: z.number(),
    approved_by: z.string().nullable(),
    approved_at: z.string().nullable(),
    dry_run: z.object({ at: z.string(), report: json }).nullable(),
    result: json.nullable(),
    failure_reason: z.string().nullable(),
    executed_by: z.string().nullable(),
    executed_at: z.string().nullable(),
    closed_by: z.string().nullable(),
    closed_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    expires_at: z.string(),
    evidence: json.nullable().describe("what raised the request when the system did (sentinel: counts, event ids, incident); null otherwise"),
  })
  .meta({ id: "ActionRequest" });
export type ActionView = z.infer<typeof actionSchema>;

export const approvalSchema = z.object({
  approver: principalRef,
  verdict: z.enum(["approve", "reject"]),
  note: z.string(),
  signed_at: z.string(),
  payload_hash: z.string(),
  decision: z.string(),
  key_id: z.string().describe("key ID (hex) of the audit signing key, as in GET /audit/public-key"),
  signature: z.string().describe("Ed25519 over the canonical JSON of the verdict statement (docs/actions.md), base64"),
});

export const actionDetailSchema = actionSchema
  .extend({
    approvals: z.array(approvalSchema),
    history: z.array(
      z.object({ at: z.string(), event: z.string(), from: z.string().nullable(), to: z.string(), actor: z.string(), note: z.string().nullable(), details: z.unknown() }),
    ),
    webhook_deliveries: z.array(
      z.object({
        id: z.string(),
        event: z.string(),
        url: z.string(),
        status: z.enum(["pending", "delivered", "failed"]),
        attempts: z.number(),
        next_attempt_at: z.string().nullable(),
        delivered_at: z.string().nullable(),
        attempt_log: z.array(z.object({ at: z.string(), status_code: z.number().nullable(), error: z.string().nullable(), duration_ms: z.number() })),
      }),
    ),
  })
  .meta({ id: "ActionRequestDetail" });
export type ActionDetail = z.infer<typeof actionDetailSchema>;

export const actionPageSchema = pageSchema(actionSchema).meta({ id: "ActionRequestPage" });
