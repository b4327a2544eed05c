// The shipped default rule set (the SOC seed's six policies). Migration 0004 installs exactly these
// as ACTIVE version 1 (a test compares the two); the fixture suite beside this file pins their behaviour.
import type { RuleDocument } from "../expression.ts";

const SPECIAL = ["loopback", "private", "link_local", "reserved", "unspecified", "multicast", "protected"] as const;

export const DEFAULT_RULES: readonly RuleDocument[] = [
  {
    name: "never-block-special-networks",
    description:
      "Never block loopback, private, link-local, reserved, unspecified or multicast space, or a configured protected network (blocklist.protectedNetworks). A CIDR is refused when any of its addresses is such space.",
    target: "action_request",
    when: {
      op: "all",
      of: [
        { op: "eq", field: "action.type", value: "block_entity" },
        {
          op: "any",
          of: [
            { op: "ip_is", field: "entity.ip", classes: [...SPECIAL] },
            { op: "ip_is", field: "entity.cidr", classes: [...SPECIAL] },
          ],
        },
      ],
    },
    outcome: "DENY",
    priority: 1000,
    tags: ["guardrail", "default"],
    controls: ["SOC2-CC6.6", "ISO27001-A.8.20"],
  },
  {
    name: "broad-cidr-needs-approval",
    description: "Blocking a range broader than /24 (IPv4) or /48 (IPv6) needs an approver.",
    target: "action_request",
    when: {
      op: "all",
      of: [
        { op: "eq", field: "action.type", value: "block_entity" },
        { op: "eq", field: "entity.type", value: "cidr" },
        {
          op: "any",
          of: [
            { op: "cidr_prefix_len", field: "entity.cidr", family: 4, cmp: "lt", value: 24 },
            { op: "cidr_prefix_len", field: "entity.cidr", family: 6, cmp: "lt", value: 48 },
          ],
        },
      ],
    },
    outcome: "REQUIRE_APPROVAL",
    approvals: 1,
    priority: 500,
    tags: ["guardrail", "default"],
    controls: ["SOC2-CC8.1"],
  },
  {
    name: "lockdown-needs-two-approvers",
    description: "Switching the security mode to lockdown needs two distinct approvers.",
    target: "action_request",
    when: {
      op: "all",
      of: [
        { op: "eq", field: "action.type", value: "set_mode" },
        { op: "eq", field: "action.payload.mode", value: "lockdown" },
      ],
    },
    outcome: "REQUIRE_APPROVAL",
    approvals: 2,
    priority: 500,
    tags: ["default"],
    controls: ["SOC2-CC8.1"],
  },
  {
    name: "auto-block-honeypot-attackers-when-elevated",
    description:
      "In elevated or lockdown mode, blocking a single public IP that honeypot evidence names (at least one honeypot hit in the last 24 hours) is allowed without approval.",
    target: "action_request",
    when: {
      op: "all",
      of: [
        { op: "eq", field: "action.type", value: "block_entity" },
        { op: "eq", field: "entity.type", value: "ip" },
        { op: "in", field: "policy.mode", values: ["elevated", "lockdown"] },
        { op: "ip_is", field: "entity.ip", classes: ["public"] },
        { op: "gt", field: "evidence.honeypot_hits_24h", value: 0 },
      ],
    },
    outcome: "ALLOW",
    priority: 300,
    tags: ["automation", "default"],
    controls: [],
  },
  {
    name: "unknown-action-types-dry-run",
    description: "An action type that no enforced rule names is only dry-run until a rule for it exists.",
    target: "action_request",
    when: { op: "eq", field: "action.type_has_rule", value: false },
    outcome: "DRY_RUN_ONLY",
    priority: 100,
    tags: ["default"],
    controls: ["SOC2-CC8.1"],
  },
  {
    name: "unblock-recent-exploiter-needs-approval",
    description: "Unblocking an address seen exploiting in the last hour needs an approver.",
    target: "action_request",
    when: {
      op: "all",
      of: [
        { op: "eq", field: "action.type", value: "unblock_entity" },
        { op: "eq", field: "source.exploitation_seen_1h", value: true },
      ],
    },
    outcome: "REQUIRE_APPROVAL",
    approvals: 1,
    priority: 500,
    tags: ["default"],
    controls: ["SOC2-CC7.4"],
  },
];
