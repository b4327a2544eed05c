// Policy rules naming the action workflow's types, installed through the rules API (draft, submit,
// review by another principal, activate) so the workflow tests run against real enforced rules.
import { expect } from "vitest";
import type { TestApp } from "./harness.ts";

export const ACTION_TEST_RULES = [
  {
    name: "test-actions-need-one-approver",
    description: "every registered action type needs one approver unless a more specific rule says otherwise",
    target: "action_request",
    // The most restrictive matching outcome wins, so the cases other rules simulate or allow are left out.
    when: {
      op: "all",
      of: [
        { op: "in", field: "action.type", values: ["block_entity", "set_mode", "update_policy", "deactivate_honeypot", "revoke_api_key", "disable_user"] },
        { op: "not", expr: { op: "all", of: [{ op: "eq", field: "action.type", value: "block_entity" }, { op: "eq", field: "entity.type", value: "user" }] } },
      ],
    },
    outcome: "REQUIRE_APPROVAL",
    approvals: 1,
    priority: 200,
    tags: ["test"],
  },
  {
    name: "test-never-block-private-space",
    description: "blocking private or loopback space is refused",
    target: "action_request",
    when: {
      op: "all",
      of: [
        { op: "eq", field: "action.type", value: "block_entity" },
        { op: "ip_is", field: "entity.ip", classes: ["private", "loopback"] },
      ],
    },
    outcome: "DENY",
    priority: 1000,
    tags: ["test"],
  },
  {
    name: "test-user-blocks-dry-run-only",
    description: "blocking a user is only simulated",
    target: "action_request",
    when: {
      op: "all",
      of: [
        { op: "eq", field: "action.type", value: "block_entity" },
        { op: "eq", field: "entity.type", value: "user" },
      ],
    },
    outcome: "DRY_RUN_ONLY",
    priority: 600,
    tags: ["test"],
  },
  {
    name: "test-broad-ranges-two-approvers",
    description: "blocking an IPv4 range broader than /24 needs two approvers",
    target: "action_request",
    when: {
      op: "all",
      of: [
        { op: "eq", field: "action.type", value: "block_entity" },
        { op: "cidr_prefix_len", field: "entity.cidr", family: 4, cmp: "lt", value: 24 },
      ],
    },
    outcome: "REQUIRE_APPROVAL",
    approvals: 2,
    priority: 500,
    tags: ["test"],
  },
  {
    name: "test-unblocks-allowed",
    description: "unblocking is allowed without approval",
    target: "action_request",
    when: { op: "eq", field: "action.type", value: "unblock_entity" },
    outcome: "ALLOW",
    priority: 300,
    tags: ["test"],
  },
] as const;

/** Creates, reviews and activates `rules` (author: an analyst key; reviewer: an approver key). */
export const installRules = async (t: TestApp, author: string, reviewer: string, rules: readonly object[] = ACTION_TEST_RULES) => {
  for (const rule of rules) {
    const name = (rule as { name: string }).name;
    const call = async (url: string, token: string, payload?: object) => {
      const res = await t.app.inject({ method: "POST", url, headers: t.auth(token), ...(payload ? { payload } : {}) });
      expect(res.statusCode, `${url}: ${res.body}`).toBeLessThan(300);
      return res;
    };
    await call("/rules", author, rule);
    await call(`/rules/${name}/versions/1/submit`, author);
    await call(`/rules/${name}/versions/1/review`, reviewer, { decision: "approve", comment: "test rule" });
    await call(`/rules/${name}/versions/1/activate`, author);
  }
};
