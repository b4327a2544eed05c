// The rules domain's tables: rule versions with their lifecycle, and recorded decisions (migration 0004).
import { boolean, integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const rules = pgTable("rules", {
  id: uuid("id").primaryKey(),
  name: text("name").notNull(),
  version: integer("version").notNull(),
  status: text("status").notNull(),
  target: text("target").notNull(),
  body: jsonb("body").notNull(),
  authorId: text("author_id").notNull(),
  authorName: text("author_name").notNull(),
  contributors: jsonb("contributors").notNull().$type<string[]>(),
  createdAt: ts("created_at").notNull(),
  updatedAt: ts("updated_at").notNull(),
  submittedAt: ts("submitted_at"),
  reviewerId: text("reviewer_id"),
  reviewerName: text("reviewer_name"),
  reviewDecision: text("review_decision"),
  reviewComment: text("review_comment"),
  reviewedAt: ts("reviewed_at"),
  activatedAt: ts("activated_at"),
  activatedBy: text("activated_by"),
  retiredAt: ts("retired_at"),
  retiredBy: text("retired_by"),
  retireReason: text("retire_reason"),
});

export const ruleDecisions = pgTable("rule_decisions", {
  id: uuid("id").primaryKey(),
  decidedAt: ts("decided_at").notNull(),
  target: text("target").notNull(),
  subjectType: text("subject_type"),
  subjectId: text("subject_id"),
  actorType: text("actor_type").notNull(),
  actorId: text("actor_id").notNull(),
  actorName: text("actor_name").notNull(),
  input: jsonb("input").notNull(),
  outcome: text("outcome").notNull(),
  approvalsRequired: integer("approvals_required").notNull(),
  defaultApplied: boolean("default_applied").notNull(),
  decidingRule: jsonb("deciding_rule"),
  matched: jsonb("matched").notNull(),
  shadowMatched: jsonb("shadow_matched").notNull(),
  ruleVersions: jsonb("rule_versions").notNull(),
});
