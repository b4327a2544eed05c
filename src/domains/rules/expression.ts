// The rule language: rule documents and their `when` expression, a JSON syntax tree whose nodes are
// told apart by `op`. These types describe what validation lets through; docs/rules.md is the guide.
import type { Target } from "./catalogue.ts";

export const DECISIONS = ["ALLOW", "DRY_RUN_ONLY", "REQUIRE_APPROVAL", "DENY"] as const;
export type Decision = (typeof DECISIONS)[number];

/** Combining order: a higher rank wins (DENY > REQUIRE_APPROVAL > DRY_RUN_ONLY > ALLOW). */
export const DECISION_RANK: Readonly<Record<Decision, number>> = { ALLOW: 0, DRY_RUN_ONLY: 1, REQUIRE_APPROVAL: 2, DENY: 3 };

export const RULE_MODES = ["enforce", "shadow"] as const;
export type RuleMode = (typeof RULE_MODES)[number];

export const IP_CLASSES = ["public", "private", "loopback", "link_local", "reserved", "multicast", "unspecified", "protected"] as const;
export type IpClassName = (typeof IP_CLASSES)[number];

export const COMPARATORS = ["lt", "le", "gt", "ge", "eq"] as const;
export type Comparator = (typeof COMPARATORS)[number];

export type Scalar = string | number | boolean;

export type Expr =
  | { op: "all" | "any"; of: Expr[] }
  | { op: "not"; expr: Expr }
  | { op: "eq" | "ne"; field: string; value: Scalar }
  | { op: "lt" | "le" | "gt" | "ge"; field: string; value: number }
  | { op: "in"; field: string; values: Scalar[] }
  | { op: "contains" | "starts_with" | "ends_with"; field: string; value: string }
  | { op: "matches"; field: string; pattern: string }
  | { op: "exists"; field: string }
  | { op: "ip_in"; field: string; cidrs: string[] }
  | { op: "ip_is"; field: string; classes: IpClassName[] }
  | { op: "cidr_prefix_len"; field: string; family?: 4 | 6; cmp: Comparator; value: number }
  | { op: "time_between"; hours?: { from: number; to: number }; weekdays?: string[]; tz?: string };

export type Op = Expr["op"];
export const OPS: readonly Op[] = [
  "all", "any", "not", "eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "starts_with", "ends_with", "matches", "exists", "ip_in", "ip_is", "cidr_prefix_len", "time_between",
];

/** A rule as written by a person (defaults not yet applied). */
export type RuleDocument = {
  name: string;
  description?: string;
  target: Target;
  when: Expr;
  outcome: Decision;
  /** Only with REQUIRE_APPROVAL: how many distinct approvers (default 1). */
  approvals?: number;
  priority?: number;
  mode?: RuleMode;
  tags?: string[];
  controls?: string[];
};

/** A rule with every default applied: what is stored and compiled. */
export type RuleBody = Required<Omit<RuleDocument, "approvals">> & { approvals: number | null };

/** Identifies one stored version (or an unsaved candidate, version null). */
export type RuleRef = { name: string; version: number | null };

export const withDefaults = (doc: RuleDocument): RuleBody => ({
  name: doc.name,
  description: doc.description ?? "",
  target: doc.target,
  when: doc.when,
  outcome: doc.outcome,
  approvals: doc.outcome === "REQUIRE_APPROVAL" ? (doc.approvals ?? 1) : null,
  priority: doc.priority ?? 100,
  mode: doc.mode ?? "enforce",
  tags: doc.tags ?? [],
  controls: doc.controls ?? [],
});
