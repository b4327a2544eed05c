// Policy-as-code rules through the HTTP API on a real database: the shipped default set, validation
// errors with JSON pointers, the lifecycle with four-eyes review and audit, explained evaluation,
// shadow mode, recorded decisions and simulation over a known history, and ReDoS refusal.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { manualClock } from "../src/lib/time.ts";
import { DEFAULT_RULES } from "../src/domains/rules/defaults/default-rules.ts";
import { withDefaults } from "../src/domains/rules/expression.ts";
import { systemActor } from "../src/domains/identity/principal.ts";
import { pgErrorCode } from "../src/db/errors.ts";

type Json = Record<string, any>;

/** The SQLSTATE a statement fails with (undefined if it succeeds). */
const sqlState = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => pgErrorCode(e));

const blockRule = (name: string, extra: Json = {}) => ({
  name,
  description: "block scanners of the 192.0.2 test range quickly",
  target: "action_request",
  when: {
    op: "all",
    of: [
      { op: "eq", field: "action.type", value: "block_entity" },
      { op: "gt", field: "evidence.honeypot_hits_24h", value: 10 },
    ],
  },
  outcome: "ALLOW",
  priority: 200,
  tags: ["test"],
  ...extra,
});

describe.each(DB_KINDS)("rules on %s", (kind) => {
  let t: TestApp;
  const clock = manualClock("2026-11-20T09:00:00.000Z");
  let analyst: { token: string; userId: string };
  let analyst2: { token: string; userId: string };
  let approver: { token: string; userId: string };
  let viewer: { token: string; userId: string };
  beforeAll(async () => {
    t = await createTestApp(kind, { clock, config: { "blocklist.protectedNetworks": ["198.51.100.0/24"] } });
    analyst = await createKeyForRole(t.db, "analyst");
    analyst2 = await createKeyForRole(t.db, "analyst");
    approver = await createKeyForRole(t.db, "approver");
    viewer = await createKeyForRole(t.db, "viewer");
  });
  afterAll(async () => t?.close());

  const req = (method: "GET" | "POST" | "PATCH", url: string, payload?: unknown, token?: string) =>
    t.app.inject({ method, url, headers: t.auth(token), ...(payload !== undefined ? { payload: payload as object } : {}) });
  const evaluate = async (input: Json, extra: Json = {}, token?: string) => {
    const res = await req("POST", "/rules/evaluate", { input, ...extra }, token);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Json;
  };
  const auditFor = async (name: string) =>
    ((await req("GET", `/audit/entries?target_type=rule&target_id=${name}&limit=1000`)).json().items as Json[]).map((e) => e.action);

  it("ships the six default rules ACTIVE, exactly as in the source", async () => {
    const res = await req("GET", "/rules?status=ACTIVE&limit=100");
    expect(res.statusCode).toBe(200);
    const items = res.json().items as Json[];
    expect(items.map((r) => r.name).sort()).toEqual(DEFAULT_RULES.map((r) => r.name).sort());
    for (const doc of DEFAULT_RULES) {
      const stored = items.find((r) => r.name === doc.name)!;
      const expected = withDefaults(doc);
      expect({ ...stored, id: undefined }).toMatchObject({
        version: 1,
        status: "ACTIVE",
        target: expected.target,
        when: expected.when,
        outcome: expected.outcome,
        approvals: expected.approvals,
        priority: expected.priority,
        mode: expected.mode,
        description: expected.description,
        tags: expected.tags,
        controls: expected.controls,
        author_id: "system:defaults",
        review: { reviewer_id: "system:release-review", decision: "approved" },
      });
    }
    expect(t.app.services.rules.activeVersions()).toHaveLength(6);
  });

  it("explains a DENY for a private address given in IPv4-mapped IPv6 form", async () => {
    const d = await evaluate({ action: { type: "block_entity" }, entity: { type: "ip", ip: "::ffff:10.1.2.3" }, policy: { mode: "elevated" }, evidence: { honeypot_hits_24h: 5 } });
    expect(d.outcome).toBe("DENY");
    expect(d.approvals_required).toBe(0);
    expect(d.deciding_rule).toEqual({ name: "never-block-special-networks", version: 1 });
    expect(d.matched.map((m: Json) => m.name)).toEqual(["never-block-special-networks"]);
    expect(d.default_applied).toBe(false);
    // Why the honeypot ALLOW did not apply: the first failing clause, with the value it saw.
    const allow = d.not_matched.find((n: Json) => n.name === "auto-block-honeypot-attackers-when-elevated");
    expect(allow.failed_clause).toMatchObject({ pointer: "/when/of/3", op: "ip_is" });
    expect(allow.failed_clause.explanation).toContain("10.1.2.3");
    expect(allow.failed_clause.explanation).toContain("private");
    // time.now came from the server's clock and is part of the explained input.
    expect(d.input.time.now).toBe("2026-11-20T09:00:00.000Z");
    expect(d.derived).toMatchObject({ "action.type_has_rule": true, "time.hour": 9, "time.weekday": "fri" });
  });

  it("denies a configured protected network and a CIDR overlapping special space", async () => {
    expect((await evaluate({ action: { type: "block_entity" }, entity: { type: "ip", ip: "198.51.100.7" } })).outcome).toBe("DENY");
    const cidr = await evaluate({ action: { type: "block_entity" }, entity: { type: "cidr", cidr: "2001:db8::/32", cidr_prefix: 32, family: 6 } });
    expect(cidr.outcome).toBe("DENY");
    expect(cidr.matched.map((m: Json) => m.name).sort()).toEqual(["broad-cidr-needs-approval", "never-block-special-networks"]);
  });

  it("falls to the configured default when nothing matches, and says so", async () => {
    const d = await evaluate({ action: { type: "block_entity" }, entity: { type: "ip", ip: "5.188.86.172" }, policy: { mode: "normal" } });
    expect(d).toMatchObject({ outcome: "REQUIRE_APPROVAL", approvals_required: 1, default_applied: true, deciding_rule: null, matched: [] });
    expect(d.not_matched).toHaveLength(6);
  });

  it("refuses an input with unknown, derived or wrongly typed fields, each with its pointer", async () => {
    const res = await req("POST", "/rules/evaluate", {
      input: { action: { type: "block_entity", typ: "x", type_has_rule: true }, entity: { ip: "1.2.3" }, evidence: { honeypot_hits_24h: "5" } },
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    const body = res.json();
    expect(body.code).toBe("RULE_INPUT_INVALID");
    const byPointer = Object.fromEntries(body.errors.map((e: Json) => [e.pointer, e.message]));
    expect(byPointer["/input/action/typ"]).toContain('did you mean "action.type"');
    expect(byPointer["/input/action/type_has_rule"]).toContain("computed by the engine");
    expect(byPointer["/input/entity/ip"]).toContain("IPv4 or IPv6");
    expect(byPointer["/input/evidence/honeypot_hits_24h"]).toContain("no coercion");
  });

  it("refuses an invalid rule with one error per problem and its JSON pointer, storing nothing", async () => {
    const before = (await req("GET", "/rules?limit=1000")).json().items.length;
    const auditBefore = (await req("GET", "/audit/entries?limit=1000")).json().items.length;
    const res = await req(
      "POST",
      "/rules",
      {
        name: "Bad Name",
        target: "action_request",
        outcome: "ALOW",
        when: {
          op: "all",
          of: [
            { op: "eqq", field: "action.type", value: "block_entity" },
            { op: "eq", field: "action.typ", value: "block_entity" },
            { op: "eq", field: "policy.mode", value: "lockdwon" },
            { op: "gt", field: "evidence.honeypot_hits_24h", value: "3" },
            { op: "matches", field: "action.reason", pattern: "(a)\\1" },
            { op: "ip_in", field: "entity.ip", cidrs: ["10.0.0.0/33"] },
            { op: "eq", field: "entity.type", value: "ip", extra: true },
          ],
        },
      },
      analyst.token,
    );
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.code).toBe("RULE_INVALID");
    const pointers = body.errors.map((e: Json) => e.pointer).sort();
    expect(pointers).toEqual(
      ["/name", "/outcome", "/when/of/0/op", "/when/of/1/field", "/when/of/2/value", "/when/of/3/value", "/when/of/4/pattern", "/when/of/5/cidrs/0", "/when/of/6/extra"].sort(),
    );
    const msg = (p: string) => body.errors.find((e: Json) => e.pointer === p).message as string;
    expect(msg("/when/of/0/op")).toContain('did you mean "eq"');
    expect(msg("/when/of/1/field")).toContain('did you mean "action.type"');
    expect(msg("/when/of/2/value")).toContain("lockdown");
    expect(msg("/when/of/4/pattern")).toContain("backreferences");
    expect((await req("GET", "/rules?limit=1000")).json().items.length).toBe(before);
    expect((await req("GET", "/audit/entries?limit=1000")).json().items.length).toBe(auditBefore);
  });

  it("runs the lifecycle with four eyes, audits every transition, and enforces the new version at once", async () => {
    const name = "fast-block-busy-scanners";
    const input = { action: { type: "block_entity" }, entity: { type: "ip", ip: "5.188.86.172" }, policy: { mode: "normal" }, evidence: { honeypot_hits_24h: 50 } };
    expect((await evaluate(input)).outcome).toBe("REQUIRE_APPROVAL");

    const created = await req("POST", "/rules", blockRule(name), analyst.token);
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ name, version: 1, status: "DRAFT", approvals: null, mode: "enforce" });
    // A second draft of the same name is refused: edit the one that exists.
    const again = await req("POST", "/rules", blockRule(name), analyst.token);
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: "RULE_DRAFT_EXISTS", version: 1 });

    // A colleague edits the draft: they become a contributor.
    const edited = await req("PATCH", `/rules/${name}/versions/1`, { priority: 250 }, analyst2.token);
    expect(edited.statusCode, edited.body).toBe(200);
    expect(edited.json().priority).toBe(250);
    expect(edited.json().contributors).toHaveLength(2);
    const badEdit = await req("PATCH", `/rules/${name}/versions/1`, { outcome: "REQUIRE_APPROVAL", approvals: 0 }, analyst.token);
    expect(badEdit.statusCode).toBe(400);
    expect(badEdit.json().errors[0].pointer).toBe("/approvals");

    // Drafts are not enforced.
    expect((await evaluate(input)).outcome).toBe("REQUIRE_APPROVAL");
    const submitted = await req("POST", `/rules/${name}/versions/1/submit`, undefined, analyst.token);
    expect(submitted.statusCode, submitted.body).toBe(200);
    expect(submitted.json().status).toBe("REVIEW");
    // Submitted versions are immutable.
    const late = await req("PATCH", `/rules/${name}/versions/1`, { priority: 1 }, analyst.token);
    expect(late.statusCode).toBe(409);
    expect(late.json()).toMatchObject({ code: "RULE_STATUS_CONFLICT", status: "REVIEW" });
    // Not approved yet: cannot be activated.
    const early = await req("POST", `/rules/${name}/versions/1/activate`, undefined, analyst.token);
    expect(early.statusCode).toBe(409);
    expect(early.json().code).toBe("RULE_NOT_APPROVED");
    // An analyst has no rules:review; the admin is fine by role but must not be a contributor.
    expect((await req("POST", `/rules/${name}/versions/1/review`, { decision: "approve", comment: "lgtm" }, analyst2.token)).json()).toMatchObject({
      code: "FORBIDDEN",
      required_permission: "rules:review",
    });
    const approved = await req("POST", `/rules/${name}/versions/1/review`, { decision: "approve", comment: "threshold is sensible" }, approver.token);
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json()).toMatchObject({ status: "REVIEW", review: { decision: "approved", comment: "threshold is sensible" } });
    const twice = await req("POST", `/rules/${name}/versions/1/review`, { decision: "reject", comment: "changed my mind" }, approver.token);
    expect(twice.statusCode).toBe(409);

    // A viewer may not activate; the author may, once someone else approved.
    expect((await req("POST", `/rules/${name}/versions/1/activate`, undefined, viewer.token)).statusCode).toBe(403);
    const activated = await req("POST", `/rules/${name}/versions/1/activate`, undefined, analyst.token);
    expect(activated.statusCode, activated.body).toBe(200);
    expect(activated.json().status).toBe("ACTIVE");
    const now = await evaluate(input);
    expect(now.outcome).toBe("ALLOW");
    expect(now.deciding_rule).toEqual({ name, version: 1 });

    // Version 2 (stricter threshold) replaces version 1 in one transaction.
    expect((await req("POST", "/rules", blockRule(name, { when: { op: "all", of: [{ op: "eq", field: "action.type", value: "block_entity" }, { op: "gt", field: "evidence.honeypot_hits_24h", value: 100 }] } }), analyst.token)).statusCode).toBe(201);
    expect((await req("POST", `/rules/${name}/versions/2/submit`, undefined, analyst.token)).statusCode).toBe(200);
    expect((await req("POST", `/rules/${name}/versions/2/review`, { decision: "approve", comment: "ok" }, approver.token)).statusCode).toBe(200);
    expect((await req("POST", `/rules/${name}/versions/2/activate`, undefined, analyst2.token)).statusCode).toBe(200);
    const history = (await req("GET", `/rules/${name}`)).json();
    expect(history.active_version).toBe(2);
    expect(history.versions.map((v: Json) => [v.version, v.status])).toEqual([
      [1, "RETIRED"],
      [2, "ACTIVE"],
    ]);
    expect(history.versions[0].retire_reason).toBe("replaced by version 2");
    expect((await evaluate(input)).outcome).toBe("REQUIRE_APPROVAL");

    const diff = (await req("GET", `/rules/${name}/diff?from=1&to=2`)).json();
    expect(diff.changes).toEqual(
      expect.arrayContaining([
        { pointer: "/when/of/1/value", kind: "changed", from: 10, to: 100 },
        { pointer: "/priority", kind: "changed", from: 250, to: 200 },
      ]),
    );

    expect(await auditFor(name)).toEqual([
      "rules.version.created",
      "rules.version.edited",
      "rules.version.submitted",
      "rules.version.approved",
      "rules.version.activated",
      "rules.version.created",
      "rules.version.submitted",
      "rules.version.approved",
      "rules.version.retired",
      "rules.version.activated",
    ]);

    // Retiring the active version stops enforcement at once.
    const retired = await req("POST", `/rules/${name}/versions/2/retire`, { reason: "experiment over" }, analyst.token);
    expect(retired.statusCode).toBe(200);
    expect(retired.json()).toMatchObject({ status: "RETIRED", retire_reason: "experiment over" });
    expect((await evaluate({ ...input, evidence: { honeypot_hits_24h: 500 } })).deciding_rule).toBeNull();
    expect((await req("POST", `/rules/${name}/versions/2/retire`, {}, analyst.token)).json().code).toBe("RULE_STATUS_CONFLICT");
  });

  it("refuses review by the author even when the author is an admin, and rejection is final", async () => {
    const name = "admin-self-review";
    expect((await req("POST", "/rules", blockRule(name))).statusCode).toBe(201);
    expect((await req("POST", `/rules/${name}/versions/1/submit`)).statusCode).toBe(200);
    const self = await req("POST", `/rules/${name}/versions/1/review`, { decision: "approve", comment: "mine" });
    expect(self.statusCode).toBe(403);
    expect(self.json().code).toBe("RULE_FOUR_EYES");
    const rejected = await req("POST", `/rules/${name}/versions/1/review`, { decision: "reject", comment: "too broad" }, approver.token);
    expect(rejected.json()).toMatchObject({ status: "REJECTED", review: { decision: "rejected", comment: "too broad" } });
    expect((await req("POST", `/rules/${name}/versions/1/activate`)).json().code).toBe("RULE_STATUS_CONFLICT");
    // The database refuses an unapproved or self-approved ACTIVE row even if a bug skipped the service.
    expect(await sqlState(t.db.orm.execute(sql`UPDATE rules SET status = 'ACTIVE' WHERE name = ${name}`))).toBe("23514");
    // And a submitted body cannot be rewritten behind the service's back.
    expect(await sqlState(t.db.orm.execute(sql`UPDATE rules SET body = '{}'::jsonb WHERE name = ${name}`))).toBe("PC002");
  });

  it("evaluates a shadow rule and reports it without enforcing it", async () => {
    const name = "shadow-deny-ssh-scanners";
    const doc = { ...blockRule(name), outcome: "DENY", mode: "shadow" };
    expect((await req("POST", "/rules", doc, analyst.token)).statusCode).toBe(201);
    await req("POST", `/rules/${name}/versions/1/submit`, undefined, analyst.token);
    await req("POST", `/rules/${name}/versions/1/review`, { decision: "approve", comment: "shadow first" }, approver.token);
    expect((await req("POST", `/rules/${name}/versions/1/activate`, undefined, analyst.token)).statusCode).toBe(200);
    const d = await evaluate({ action: { type: "block_entity" }, entity: { type: "ip", ip: "5.188.86.172" }, evidence: { honeypot_hits_24h: 11 } });
    expect(d.outcome).toBe("REQUIRE_APPROVAL");
    expect(d.shadow_matched.map((m: Json) => m.name)).toEqual([name]);
    expect(d.matched).toEqual([]);
  });

  it("evaluates against candidate drafts without activating them", async () => {
    const input = { action: { type: "set_mode", payload: { mode: "elevated" } }, policy: { mode: "normal" } };
    expect((await evaluate(input)).outcome).toBe("REQUIRE_APPROVAL");
    const withDraft = await evaluate(input, {
      with: [{ name: "elevate-freely", target: "action_request", when: { op: "eq", field: "action.payload.mode", value: "elevated" }, outcome: "ALLOW" }],
    });
    expect(withDraft).toMatchObject({ outcome: "ALLOW", deciding_rule: { name: "elevate-freely", version: null } });
    const bad = await req("POST", "/rules/evaluate", { input, with: [{ name: "x", target: "action_request", when: { op: "nope" }, outcome: "ALLOW" }] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0].pointer).toBe("/with/0/when/op");
    const without = await evaluate({ action: { type: "block_entity" } }, { without: ["unknown-action-types-dry-run"] });
    expect(without.outcome).toBe("REQUIRE_APPROVAL");
  });

  it("validates documents and every stored version, as `rules validate` does", async () => {
    const res = await req("POST", "/rules/validate", { rules: [blockRule("ok-rule"), { ...blockRule("bad-rule"), when: { op: "exists", field: "nope" } }] }, viewer.token);
    expect(res.statusCode).toBe(200);
    expect(res.json().valid).toBe(false);
    expect(res.json().results.map((r: Json) => [r.name, r.valid])).toEqual([
      ["ok-rule", true],
      ["bad-rule", false],
    ]);
    expect(res.json().results[1].errors[0]).toMatchObject({ pointer: "/when/field", keyword: "unknown_field" });
    const all = await req("POST", "/rules/validate", { all: true }, viewer.token);
    expect(all.json().valid).toBe(true);
    expect(all.json().results.length).toBeGreaterThanOrEqual(6);
  });

  it("refuses ReDoS patterns and bounds the rest", async () => {
    for (const pattern of ["(a)\\1", "(?=a)a", "(?<!x)y", "a".repeat(300)]) {
      const res = await req("POST", "/rules/validate", { rule: { ...blockRule("regex"), when: { op: "matches", field: "action.reason", pattern } } });
      expect(res.json().valid, pattern).toBe(false);
      expect(res.json().results[0].errors[0].pointer).toBe("/when/pattern");
    }
    // The classic exponential pattern runs on the linear-time engine (or is refused without it).
    const classic = { ...blockRule("redos-classic"), when: { op: "matches", field: "action.reason", pattern: "^(a+)+$" } };
    const validation = (await req("POST", "/rules/validate", { rule: classic })).json();
    if (validation.valid) {
      const d = await evaluate({ action: { type: "block_entity", reason: `${"a".repeat(4000)}!` } }, { with: [classic] });
      expect(d.matched.map((m: Json) => m.name)).not.toContain("redos-classic");
      const hit = await evaluate({ action: { type: "block_entity", reason: "aaaa" } }, { with: [classic] });
      expect(hit.matched.map((m: Json) => m.name)).toContain("redos-classic");
      const tooLong = await evaluate({ action: { type: "block_entity", reason: "a".repeat(5000) } }, { with: [classic] });
      expect(tooLong.not_matched.find((n: Json) => n.name === "redos-classic").failed_clause.explanation).toContain("longer than 4096");
    } else {
      expect(validation.results[0].errors[0].message).toContain("exponential");
    }
  });

  it("records decisions with their input and rule versions, append-only", async () => {
    const rules = t.app.services.rules;
    const recorded = await t.db.transaction((tx) =>
      rules.decideAndRecord(tx, systemActor("test"), "action_request", { action: { type: "block_entity" }, entity: { type: "ip", ip: "127.0.0.1" } }, { type: "action_request", id: "req-1" }),
    );
    expect(recorded.outcome).toBe("DENY");
    const stored = (await req("GET", `/rules/decisions/${recorded.decision_id}`, undefined, viewer.token)).json();
    expect(stored).toMatchObject({
      id: recorded.decision_id,
      outcome: "DENY",
      subject: { type: "action_request", id: "req-1" },
      input: { action: { type: "block_entity" }, entity: { type: "ip", ip: "127.0.0.1" }, time: { now: clock.now().toISOString() } },
      deciding_rule: { name: "never-block-special-networks", version: 1 },
    });
    expect(stored.rule_versions).toEqual(expect.arrayContaining([{ name: "never-block-special-networks", version: 1 }]));
    expect(await sqlState(t.db.orm.execute(sql`UPDATE rule_decisions SET outcome = 'ALLOW'`))).toBe("PC001");
    expect((await req("GET", "/rules/decisions/not-an-id")).statusCode).toBe(404);
  });

  it("simulates a candidate against a known history and counts flips by direction", async () => {
    const rules = t.app.services.rules;
    clock.set("2026-11-21T00:00:00.000Z");
    const actor = systemActor("test");
    const record = (input: Json, id: string) => t.db.transaction((tx) => rules.decideAndRecord(tx, actor, "action_request", input, { type: "action_request", id }));
    // 4 single-IP blocks of honeypot attackers in normal mode (default: REQUIRE_APPROVAL), 2 user
    // disables (DRY_RUN_ONLY: no rule of their own), 1 lockdown switch (2 approvers), 1 loopback (DENY).
    for (let i = 0; i < 4; i++) {
      await record({ action: { type: "block_entity" }, entity: { type: "ip", ip: `5.188.86.${10 + i}` }, policy: { mode: "normal" }, evidence: { honeypot_hits_24h: 3 } }, `ip-${i}`);
      clock.advance(60_000);
    }
    for (let i = 0; i < 2; i++) await record({ action: { type: "disable_user", payload: { value: `mallory${i}` } }, entity: { type: "user" }, policy: { mode: "normal" } }, `user-${i}`);
    await record({ action: { type: "set_mode", payload: { mode: "lockdown" } }, policy: { mode: "elevated" } }, "mode-1");
    await record({ action: { type: "block_entity" }, entity: { type: "ip", ip: "127.0.0.1" } }, "lo-1");
    clock.set("2026-11-22T00:00:00.000Z");

    const candidate = [
      // honeypot attackers are auto-blocked in every mode
      { name: "auto-block-honeypot-attackers-when-elevated", target: "action_request", when: { op: "all", of: [{ op: "eq", field: "action.type", value: "block_entity" }, { op: "ip_is", field: "entity.ip", classes: ["public"] }, { op: "gt", field: "evidence.honeypot_hits_24h", value: 0 }] }, outcome: "ALLOW", priority: 300 },
      // disabling users gets a rule of its own
      { name: "user-disables-need-approval", target: "action_request", when: { op: "eq", field: "action.type", value: "disable_user" }, outcome: "REQUIRE_APPROVAL" },
      // lockdown needs three
      { name: "lockdown-needs-two-approvers", target: "action_request", when: { op: "all", of: [{ op: "eq", field: "action.type", value: "set_mode" }, { op: "eq", field: "action.payload.mode", value: "lockdown" }] }, outcome: "REQUIRE_APPROVAL", approvals: 3 },
    ];
    const res = await req("POST", "/rules/simulate", { with: candidate, since: "2026-11-21T00:00:00Z", until: "2026-11-21T23:59:59Z", examples: 2 }, viewer.token);
    expect(res.statusCode, res.body).toBe(200);
    const sim = res.json();
    expect(sim).toMatchObject({ decisions: 8, changed: 7, unchanged: 1, truncated: false });
    expect(sim.flips.map((f: Json) => [f.from, f.to, f.count])).toEqual([
      ["REQUIRE_APPROVAL", "ALLOW", 4],
      ["DRY_RUN_ONLY", "REQUIRE_APPROVAL", 2],
    ]);
    expect(sim.flips[0].examples).toHaveLength(2);
    expect(sim.flips[0].examples[0]).toMatchObject({ subject: { type: "action_request", id: "ip-0" }, matched_before: [], matched_after: ["auto-block-honeypot-attackers-when-elevated"], deciding_rule_after: "auto-block-honeypot-attackers-when-elevated" });
    expect(sim.approvals_changed.count).toBe(1);
    expect(sim.approvals_changed.examples[0]).toMatchObject({ approvals_from: 2, approvals_to: 3 });
    expect(sim.candidate.filter((c: Json) => c.source === "given").map((c: Json) => c.name).sort()).toEqual(candidate.map((c) => c.name).sort());
    // Durations count back from now: the history is 1 day old.
    expect((await req("POST", "/rules/simulate", { since: "12h" })).json().decisions).toBe(0);
    expect((await req("POST", "/rules/simulate", { since: "2d" })).json().decisions).toBeGreaterThanOrEqual(8);
    const bad = await req("POST", "/rules/simulate", { since: "last week" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0].path).toBe("since");
  });

  it("serves the catalogue and the rule JSON Schema to every role", async () => {
    const cat = (await req("GET", "/rules/catalogue", undefined, viewer.token)).json();
    expect(cat.action_request.map((f: Json) => f.field)).toEqual(expect.arrayContaining(["action.type", "source.exploitation_seen_1h", "evidence.honeypot_hits_24h"]));
    expect(cat.action_request.find((f: Json) => f.field === "action.type_has_rule").derived).toBe(true);
    const schema = (await req("GET", "/rules/schema?target=event", undefined, viewer.token)).json();
    expect(schema.$defs.expr.oneOf[0].properties.op.const).toBe("all");
    expect(schema.properties.target.const).toBe("event");
  });

  it("lets a viewer read and evaluate but not write", async () => {
    expect((await req("GET", "/rules", undefined, viewer.token)).statusCode).toBe(200);
    const res = await req("POST", "/rules", blockRule("viewer-rule"), viewer.token);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: "FORBIDDEN", required_permission: "rules:write" });
    expect((await req("GET", "/rules/no-such-rule")).json().code).toBe("RULE_NOT_FOUND");
    expect((await req("GET", "/rules/no-such-rule/versions/1")).statusCode).toBe(404);
    expect((await req("GET", "/rules/x/versions/abc")).statusCode).toBe(400);
  });

  it("lets exactly one of two concurrent activations win", async () => {
    const name = "race-activation";
    for (const v of [1, 2]) {
      expect((await req("POST", "/rules", blockRule(name, { priority: 100 + v }), analyst.token)).statusCode).toBe(201);
      await req("POST", `/rules/${name}/versions/${v}/submit`, undefined, analyst.token);
      await req("POST", `/rules/${name}/versions/${v}/review`, { decision: "approve", comment: "ok" }, approver.token);
    }
    // Two different versions at once: the one-ACTIVE index decides.
    const [a, b] = await Promise.all([
      req("POST", `/rules/${name}/versions/1/activate`, undefined, analyst.token),
      req("POST", `/rules/${name}/versions/2/activate`, undefined, analyst2.token),
    ]);
    const codes = [a.statusCode, b.statusCode].sort();
    const active = (await t.db.query<{ version: number }>("SELECT version FROM rules WHERE name = $1 AND status = 'ACTIVE'", [name])).map((r) => r.version);
    expect(active).toHaveLength(1);
    // On one connection (PGlite) they serialise and both succeed in turn; with real concurrency one gets 409.
    if (codes[1] === 409) {
      expect(codes).toEqual([200, 409]);
      const loser = a.statusCode === 409 ? a : b;
      expect(loser.json().code).toMatch(/^RULE_(ACTIVATION_CONFLICT|STATUS_CONFLICT)$/);
    } else expect(codes).toEqual([200, 200]);
  });
});
