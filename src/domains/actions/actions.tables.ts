// Drizzle tables of the action workflow (migration 0005): requests, signed verdicts, history, webhook outbox.
import { integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const actionRequests = pgTable("action_requests", {
  id: uuid("id").primaryKey(),
  actionType: text("action_type").notNull(),
  payload: jsonb("payload").notNull(),
  payloadHash: text("payload_hash").notNull(),
  reason: text("reason").notNull(),
  status: text("status").notNull(),
  risk: text("risk").notNull(),
  requestedBy: text("requested_by").notNull(),
  requestedByType: text("requested_by_type").notNull(),
  requestedById: text("requested_by_id").notNull(),
  decision: jsonb("decision").notNull(),
  decisionOutcome: text("decision_outcome").notNull(),
  approvalsRequired: integer("approvals_required").notNull(),
  approvalsCount: integer("approvals_count").notNull(),
  approvedBy: text("approved_by"),
  dryRun: jsonb("dry_run"),
  dryRunAt: ts("dry_run_at"),
  result: jsonb("result"),
  failureReason: text("failure_reason"),
  executedBy: text("executed_by"),
  closedBy: text("closed_by"),
  createdAt: ts("created_at").notNull(),
  updatedAt: ts("updated_at").notNull(),
  expiresAt: ts("expires_at").notNull(),
  approvedAt: ts("approved_at"),
  executedAt: ts("executed_at"),
  closedAt: ts("closed_at"),
  // Migration 0007: what raised the request (the sentinel's counts and event ids), and the key the
  // database keeps unique among open requests (one open block per source).
  evidence: jsonb("evidence"),
  openKey: text("open_key"),
});

export const actionApprovals = pgTable("action_approvals", {
  id: uuid("id").primaryKey(),
  requestId: uuid("request_id").notNull(),
  approverKey: text("approver_key").notNull(),
  approver: jsonb("approver").notNull(),
  verdict: text("verdict").notNull(),
  note: text("note").notNull(),
  signedAt: ts("signed_at").notNull(),
  payloadHash: text("payload_hash").notNull(),
  decisionOutcome: text("decision_outcome").notNull(),
  keyId: text("key_id").notNull(),
  signature: text("signature").notNull(),
});

export const actionHistory = pgTable("action_history", {
  id: uuid("id").primaryKey(),
  requestId: uuid("request_id").notNull(),
  at: ts("at").notNull(),
  event: text("event").notNull(),
  fromStatus: text("from_status"),
  toStatus: text("to_status").notNull(),
  actor: text("actor").notNull(),
  note: text("note"),
  details: jsonb("details"),
});

export const actionWebhookDeliveries = pgTable("action_webhook_deliveries", {
  id: uuid("id").primaryKey(),
  requestId: uuid("request_id").notNull(),
  event: text("event").notNull(),
  url: text("url").notNull(),
  body: text("body").notNull(),
  status: text("status").notNull(),
  attempts: integer("attempts").notNull(),
  attemptLog: jsonb("attempt_log").notNull(),
  nextAttemptAt: ts("next_attempt_at").notNull(),
  createdAt: ts("created_at").notNull(),
  deliveredAt: ts("delivered_at"),
});
