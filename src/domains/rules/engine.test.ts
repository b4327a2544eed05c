// Engine semantics on compiled rule sets: every operator, strict typing, missing fields, combining
// precedence and the default, explanations, IPv6 and IPv4-mapped addresses, time windows, coverage,
// and the shipped default set against its fixture suite.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CompiledRuleSet, type DecisionInput } from "./engine.ts";
import { withDefaults, type Expr, type RuleDocument } from "./expression.ts";
import { DEFAULT_RULES } from "./defaults/default-rules.ts";
import { loadFixtureDir, runRuleTests } from "./rule-tests.ts";
import { validateRuleDocument } from "./validation.ts";
import { mulberry32 } from "../../lib/prng.ts";
import { generateRules } from "../../../bench/rules.bench.ts";

const rule = (name: string, when: Expr, extra: Partial<RuleDocument> = {}): RuleDocument => ({ name, target: "action_request", when, outcome: "DENY", ...extra });
const setOf = (docs: RuleDocument[], protectedNetworks: string[] = []) => {
  for (const d of docs) expect(validateRuleDocument(d), d.name).toEqual([]);
  return new CompiledRuleSet(
    "action_request",
    docs.map((d, i) => ({ body: withDefaults(d), version: i + 1 })),
    { protectedNetworks },
  );
};
/** Whether a single-rule set matches the input. */
const holds = (when: Expr, input: DecisionInput, protectedNetworks: string[] = []) => setOf([rule("r", when)], protectedNetworks).decide(input).matched.length === 1;

describe("operators", () => {
  const input: DecisionInput = {
    action: { type: "block_entity", reason: "SSH brute force from botnet", payload: { value: "5.188.86.172", duration_seconds: 3600 } },
    entity: { type: "ip", ip: "5.188.86.172", family: 4 },
    evidence: { honeypot_hits_24h: 7, sensors: ["cowrie-eu-1", "opencanary-2"] },
    source: { exploitation_seen_1h: true },
    principal: { role: "analyst", id: "user:1", kind: "user" },
  };
  const cases: [string, Expr, boolean][] = [
    ["eq string", { op: "eq", field: "action.type", value: "block_entity" }, true],
    ["eq is case-sensitive", { op: "eq", field: "action.type", value: "BLOCK_IP" }, false],
    ["eq boolean", { op: "eq", field: "source.exploitation_seen_1h", value: true }, true],
    ["eq integer", { op: "eq", field: "evidence.honeypot_hits_24h", value: 7 }, true],
    ["ne", { op: "ne", field: "principal.role", value: "admin" }, true],
    ["ne on a missing field is false", { op: "ne", field: "action.payload.mode", value: "lockdown" }, false],
    ["lt", { op: "lt", field: "evidence.honeypot_hits_24h", value: 8 }, true],
    ["le", { op: "le", field: "evidence.honeypot_hits_24h", value: 7 }, true],
    ["gt", { op: "gt", field: "evidence.honeypot_hits_24h", value: 7 }, false],
    ["ge", { op: "ge", field: "action.payload.duration_seconds", value: 3600 }, true],
    ["in", { op: "in", field: "action.type", values: ["unblock_entity", "block_entity"] }, true],
    ["in (large list uses a set)", { op: "in", field: "evidence.honeypot_hits_24h", values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }, true],
    ["contains (string)", { op: "contains", field: "action.reason", value: "brute" }, true],
    ["contains (list)", { op: "contains", field: "evidence.sensors", value: "cowrie-eu-1" }, true],
    ["contains (list, partial element is not enough)", { op: "contains", field: "evidence.sensors", value: "cowrie" }, false],
    ["starts_with", { op: "starts_with", field: "action.reason", value: "SSH" }, true],
    ["ends_with", { op: "ends_with", field: "action.reason", value: "botnet" }, true],
    ["matches", { op: "matches", field: "action.reason", pattern: "^SSH [a-z ]+from" }, true],
    ["exists", { op: "exists", field: "source.exploitation_seen_1h" }, true],
    ["exists (missing)", { op: "exists", field: "entity.cidr" }, false],
    ["ip_in", { op: "ip_in", field: "entity.ip", cidrs: ["5.188.86.0/24"] }, true],
    ["ip_in (outside)", { op: "ip_in", field: "entity.ip", cidrs: ["5.188.87.0/24", "2001:db8::/32"] }, false],
    ["ip_is public", { op: "ip_is", field: "entity.ip", classes: ["public"] }, true],
    ["not", { op: "not", expr: { op: "eq", field: "action.type", value: "block_entity" } }, false],
    ["any", { op: "any", of: [{ op: "eq", field: "action.type", value: "x" }, { op: "gt", field: "evidence.honeypot_hits_24h", value: 1 }] }, true],
    ["all", { op: "all", of: [{ op: "eq", field: "action.type", value: "block_entity" }, { op: "lt", field: "evidence.honeypot_hits_24h", value: 1 }] }, false],
  ];
  it.each(cases)("%s", (_label, when, expected) => {
    expect(holds(when, input)).toBe(expected);
  });

  it("never coerces: a string 7 is not the integer 7, and a missing field makes comparisons false", () => {
    const count = { op: "gt", field: "evidence.honeypot_hits_24h", value: 1 } as const;
    expect(holds(count, { evidence: { honeypot_hits_24h: "7" } })).toBe(false);
    expect(holds({ op: "eq", field: "evidence.honeypot_hits_24h", value: 7 }, { evidence: { honeypot_hits_24h: "7" } })).toBe(false);
    expect(holds(count, {})).toBe(false);
    expect(holds({ op: "not", expr: count }, {})).toBe(true);
    expect(holds({ op: "eq", field: "source.exploitation_seen_1h", value: true }, { source: { exploitation_seen_1h: "true" } })).toBe(false);
    // Structures where objects were expected never throw.
    expect(holds(count, { evidence: [1, 2] })).toBe(false);
    expect(holds({ op: "ip_is", field: "entity.ip", classes: ["public"] }, { entity: { ip: "not an ip" } })).toBe(false);
  });
});

describe("addresses", () => {
  const is = (ip: string, classes: string[]) => holds({ op: "ip_is", field: "entity.ip", classes } as Expr, { entity: { ip } });
  it("classifies IPv4, IPv6 and IPv4-mapped IPv6 the same way", () => {
    expect(is("10.1.2.3", ["private"])).toBe(true);
    expect(is("::ffff:10.1.2.3", ["private"])).toBe(true);
    expect(is("::ffff:a01:203", ["private"])).toBe(true);
    expect(is("::ffff:8.8.8.8", ["public"])).toBe(true);
    expect(is("127.0.0.1", ["loopback"])).toBe(true);
    expect(is("::1", ["loopback"])).toBe(true);
    expect(is("fe80::1", ["link_local"])).toBe(true);
    expect(is("169.254.1.1", ["link_local"])).toBe(true);
    expect(is("fd12::1", ["private"])).toBe(true);
    expect(is("ff02::1", ["multicast"])).toBe(true);
    expect(is("2001:db8::1", ["reserved"])).toBe(true);
    expect(is("0.0.0.0", ["unspecified"])).toBe(true);
    expect(is("2a01:4f8:1c1c:7a2::1", ["public"])).toBe(true);
    expect(is("2a01:4f8:1c1c:7a2::1", ["private", "reserved"])).toBe(false);
  });

  it("compares addresses canonically, whatever the spelling", () => {
    expect(holds({ op: "eq", field: "entity.ip", value: "2001:DB8:0:0::1" }, { entity: { ip: "2001:db8::1" } })).toBe(true);
    expect(holds({ op: "eq", field: "entity.ip", value: "192.0.2.1" }, { entity: { ip: "::ffff:192.0.2.1" } })).toBe(true);
    expect(holds({ op: "in", field: "entity.ip", values: ["::ffff:5.188.86.172"] }, { entity: { ip: "5.188.86.172" } })).toBe(true);
    expect(holds({ op: "ip_in", field: "entity.ip", cidrs: ["::ffff:5.188.86.0/120"] }, { entity: { ip: "5.188.86.9" } })).toBe(true);
    expect(holds({ op: "ip_in", field: "entity.ip", cidrs: ["2a01:4f8::/32"] }, { entity: { ip: "2a01:04f8:0000::0001" } })).toBe(true);
  });

  it("treats a CIDR as its whole range: any overlap with special or listed space counts", () => {
    const cidr = (c: string, classes: string[]) => holds({ op: "ip_is", field: "entity.cidr", classes } as Expr, { entity: { cidr: c } });
    expect(cidr("10.0.0.0/8", ["private"])).toBe(true);
    expect(cidr("8.0.0.0/4", ["private"])).toBe(true);
    expect(cidr("5.188.86.0/24", ["public"])).toBe(true);
    expect(cidr("5.188.86.0/24", ["private"])).toBe(false);
    expect(holds({ op: "ip_in", field: "entity.cidr", cidrs: ["5.188.86.128/25"] }, { entity: { cidr: "5.188.86.0/24" } })).toBe(true);
  });

  it("knows configured protected networks as the class `protected`", () => {
    const when: Expr = { op: "ip_is", field: "entity.ip", classes: ["protected"] };
    expect(holds(when, { entity: { ip: "45.95.147.9" } }, ["45.95.147.0/24"])).toBe(true);
    expect(holds(when, { entity: { ip: "45.95.148.9" } }, ["45.95.147.0/24"])).toBe(false);
    expect(holds(when, { entity: { ip: "::ffff:45.95.147.9" } }, ["45.95.147.0/24"])).toBe(true);
  });

  it("compares CIDR prefix lengths per family", () => {
    const broad4: Expr = { op: "cidr_prefix_len", field: "entity.cidr", family: 4, cmp: "lt", value: 24 };
    expect(holds(broad4, { entity: { cidr: "45.95.0.0/16" } })).toBe(true);
    expect(holds(broad4, { entity: { cidr: "45.95.147.0/24" } })).toBe(false);
    expect(holds(broad4, { entity: { cidr: "2a01::/16" } })).toBe(false);
    expect(holds({ op: "cidr_prefix_len", field: "entity.cidr", cmp: "eq", value: 64 }, { entity: { cidr: "2a01:4f8:1:2::/64" } })).toBe(true);
  });
});

describe("time windows", () => {
  const at = (iso: string) => ({ time: { now: iso } });
  const night: Expr = { op: "time_between", hours: { from: 22, to: 6 } };
  it("wraps past midnight and honours weekdays (UTC unless a zone is given)", () => {
    expect(holds(night, at("2026-11-20T23:30:00Z"))).toBe(true);
    expect(holds(night, at("2026-11-20T05:59:59Z"))).toBe(true);
    expect(holds(night, at("2026-11-20T06:00:00Z"))).toBe(false);
    expect(holds(night, at("2026-11-20T12:00:00Z"))).toBe(false);
    const office: Expr = { op: "time_between", hours: { from: 9, to: 17 }, weekdays: ["mon", "tue", "wed", "thu", "fri"] };
    expect(holds(office, at("2026-11-20T10:00:00Z"))).toBe(true); // Friday
    expect(holds(office, at("2026-11-21T10:00:00Z"))).toBe(false); // Saturday
    // 08:30 UTC is 09:30 in Berlin (CET, UTC+1 in November).
    expect(holds({ ...office, tz: "Europe/Berlin" } as Expr, at("2026-11-20T08:30:00Z"))).toBe(true);
    expect(holds(office, at("2026-11-20T08:30:00Z"))).toBe(false);
    expect(holds(night, at("2026-11-20T23:30:00+05:00"))).toBe(false); // 18:30 UTC
    expect(holds(night, {})).toBe(false);
  });
  it("derives time.hour and time.weekday from time.now", () => {
    expect(holds({ op: "eq", field: "time.weekday", value: "sat" }, at("2026-11-21T00:00:00Z"))).toBe(true);
    expect(holds({ op: "ge", field: "time.hour", value: 18 }, at("2026-11-21T19:00:00+01:00"))).toBe(true);
  });
});

describe("combining", () => {
  const any = { op: "exists", field: "action.type" } as const;
  it("DENY > REQUIRE_APPROVAL > DRY_RUN_ONLY > ALLOW whatever the priorities", () => {
    const set = setOf([
      rule("allow-high", any, { outcome: "ALLOW", priority: 9999 }),
      rule("dry", any, { outcome: "DRY_RUN_ONLY", priority: 5000 }),
      rule("approve", any, { outcome: "REQUIRE_APPROVAL", approvals: 2, priority: 10 }),
      rule("deny-low", any, { outcome: "DENY", priority: 0 }),
    ]);
    const d = set.decide({ action: { type: "block_entity" } });
    expect(d.outcome).toBe("DENY");
    expect(d.deciding_rule).toEqual({ name: "deny-low", version: 4 });
    expect(d.approvals_required).toBe(0);
    // Matched rules are listed by priority.
    expect(d.matched.map((m) => m.name)).toEqual(["allow-high", "dry", "approve", "deny-low"]);
    const noDeny = setOf([rule("allow", any, { outcome: "ALLOW" }), rule("dry", any, { outcome: "DRY_RUN_ONLY" }), rule("a1", any, { outcome: "REQUIRE_APPROVAL" }), rule("a3", any, { outcome: "REQUIRE_APPROVAL", approvals: 3 })]);
    expect(noDeny.decide({ action: { type: "x" } })).toMatchObject({ outcome: "REQUIRE_APPROVAL", approvals_required: 3 });
    expect(setOf([rule("allow", any, { outcome: "ALLOW" }), rule("dry", any, { outcome: "DRY_RUN_ONLY" })]).decide({ action: { type: "x" } }).outcome).toBe("DRY_RUN_ONLY");
  });

  it("applies the configured default when nothing matches", () => {
    const never = { op: "eq", field: "action.type", value: "nothing" } as const;
    const set = new CompiledRuleSet("action_request", [{ body: withDefaults(rule("r", never)), version: 1 }], { defaultOutcome: { decision: "DENY", approvals: 1 } });
    expect(set.decide({ action: { type: "x" } })).toMatchObject({ outcome: "DENY", default_applied: true, deciding_rule: null, approvals_required: 0 });
    const approve = new CompiledRuleSet("action_request", [], { defaultOutcome: { decision: "REQUIRE_APPROVAL", approvals: 2 } });
    expect(approve.decide({})).toMatchObject({ outcome: "REQUIRE_APPROVAL", approvals_required: 2, default_applied: true });
  });

  it("keeps shadow rules out of the outcome but reports them", () => {
    const set = setOf([rule("shadow-deny", any, { mode: "shadow" }), rule("allow", any, { outcome: "ALLOW" })]);
    const d = set.decide({ action: { type: "block_entity" } });
    expect(d.outcome).toBe("ALLOW");
    expect(d.shadow_matched.map((m) => m.name)).toEqual(["shadow-deny"]);
    // Shadow rules do not give an action type "a rule of its own" either.
    const only = setOf([rule("shadow-deny", { op: "eq", field: "action.type", value: "block_entity" }, { mode: "shadow" })]);
    expect(only.coveredActionTypes.has("block_entity")).toBe(false);
  });

  it("counts only positively named action types as having a rule", () => {
    const set = setOf([
      rule("a", { op: "in", field: "action.type", values: ["block_entity", "unblock_entity"] }),
      rule("b", { op: "not", expr: { op: "eq", field: "action.type", value: "set_mode" } }),
    ]);
    expect([...set.coveredActionTypes].sort()).toEqual(["block_entity", "unblock_entity"]);
    expect(set.decide({ action: { type: "set_mode" } }).derived["action.type_has_rule"]).toBe(false);
  });
});

describe("explanations", () => {
  it("names the first failing clause with its pointer and the value it saw", () => {
    const set = setOf([
      rule("r", {
        op: "all",
        of: [
          { op: "eq", field: "action.type", value: "block_entity" },
          { op: "gt", field: "evidence.honeypot_hits_24h", value: 10 },
          { op: "ip_is", field: "entity.ip", classes: ["public"] },
        ],
      }),
    ]);
    const [miss] = set.decide({ action: { type: "block_entity" }, evidence: { honeypot_hits_24h: 3 }, entity: { ip: "10.0.0.1" } }).not_matched;
    expect(miss!.failed_clause).toEqual({ pointer: "/when/of/1", op: "gt", explanation: "needs evidence.honeypot_hits_24h > 10, but evidence.honeypot_hits_24h is 3" });
    const [missing] = set.decide({ action: { type: "block_entity" } }).not_matched;
    expect(missing!.failed_clause.explanation).toBe("needs evidence.honeypot_hits_24h > 10, but evidence.honeypot_hits_24h is missing");
    const [ip] = set.decide({ action: { type: "block_entity" }, evidence: { honeypot_hits_24h: 30 }, entity: { ip: "::ffff:10.0.0.1" } }).not_matched;
    expect(ip!.failed_clause).toMatchObject({ pointer: "/when/of/2", op: "ip_is" });
    expect(ip!.failed_clause.explanation).toBe('needs entity.ip is public, but entity.ip is "10.0.0.1" (private)');
  });

  it("explains any and not in words", () => {
    const set = setOf([
      rule("any", { op: "any", of: [{ op: "eq", field: "policy.mode", value: "lockdown" }, { op: "eq", field: "source.exploitation_seen_1h", value: true }] }),
      rule("not", { op: "not", expr: { op: "eq", field: "action.type", value: "block_entity" } }),
    ]);
    const d = set.decide({ action: { type: "block_entity" }, policy: { mode: "normal" } });
    const byName = Object.fromEntries(d.not_matched.map((n) => [n.name, n.failed_clause]));
    expect(byName.any).toEqual({
      pointer: "/when",
      op: "any",
      explanation: 'none of the 2 alternatives held: (1) needs policy.mode = "lockdown", but policy.mode is "normal"; (2) needs source.exploitation_seen_1h = true, but source.exploitation_seen_1h is missing',
    });
    expect(byName.not).toEqual({ pointer: "/when", op: "not", explanation: 'needs not (action.type = "block_entity"), but it holds: action.type is "block_entity"' });
  });

  it("explains a rule skipped by the action-type guard index with its guard", () => {
    const set = setOf([rule("cidr-only", { op: "all", of: [{ op: "eq", field: "action.type", value: "block_entity" }, { op: "exists", field: "entity.cidr" }] })]);
    const [miss] = set.decide({ action: { type: "unblock_entity" } }).not_matched;
    expect(miss!.failed_clause).toEqual({ pointer: "/when/of/0", op: "eq", explanation: 'needs action.type = "block_entity", but action.type is "unblock_entity"' });
  });

  it("decides exactly as a full evaluation does, with the guard index", () => {
    const docs = generateRules(100, 7);
    const rules = docs.map((d, i) => ({ body: withDefaults(d), version: i + 1 }));
    const indexed = new CompiledRuleSet("action_request", rules);
    const full = new CompiledRuleSet("action_request", rules, { coverage: true });
    const rnd = mulberry32(11);
    const types = ["block_entity", "block_entity", "unblock_entity", "set_mode", "quarantine_host", "rotate_key"];
    for (let k = 0; k < 500; k++) {
      const input: DecisionInput = {
        action: { type: types[Math.floor(rnd() * types.length)], reason: rnd() < 0.5 ? "ssh brute force" : "web scan" },
        entity: { type: "ip", ip: `${1 + Math.floor(rnd() * 220)}.${Math.floor(rnd() * 255)}.1.2` },
        policy: { mode: ["normal", "elevated", "lockdown"][Math.floor(rnd() * 3)] },
        evidence: { honeypot_hits_24h: Math.floor(rnd() * 40) },
        source: { exploitation_seen_1h: rnd() < 0.5, events_1h: Math.floor(rnd() * 200) },
        principal: { role: rnd() < 0.5 ? "admin" : "analyst" },
        time: { now: new Date(Date.UTC(2026, 10, 1) + Math.floor(rnd() * 7 * 86_400_000)).toISOString() },
      };
      const a = indexed.decide(input);
      const b = full.decide(input);
      expect(a.outcome).toBe(b.outcome);
      expect(a.approvals_required).toBe(b.approvals_required);
      expect(a.matched).toEqual(b.matched);
      expect(a.not_matched.map((n) => n.name).sort()).toEqual(b.not_matched.map((n) => n.name).sort());
    }
  });

  it("can skip explanations for speed", () => {
    const set = setOf([rule("r", { op: "eq", field: "action.type", value: "x" })]);
    expect(set.decide({ action: { type: "y" } }, { explain: false }).not_matched).toEqual([]);
  });
});

describe("the shipped default rule set", () => {
  const fixtures = loadFixtureDir(fileURLToPath(new URL("./defaults/fixtures/", import.meta.url)));
  const rules = DEFAULT_RULES.map((d) => ({ body: withDefaults(d), version: 1 }));

  it("passes its own fixture suite with full branch coverage", () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(15);
    const report = runRuleTests(rules, fixtures, { coverage: true });
    expect(report.failures).toEqual([]);
    expect(report.passed).toBe(fixtures.length);
    expect(report.coverage!.percent).toBe(100);
    expect(report.coverage!.rules.every((r) => r.matched > 0 && r.not_matched > 0)).toBe(true);
  });

  it("reports a failing fixture with the clause that decided it, and uncovered branches", () => {
    const changed = rules.map((r) =>
      r.body.name === "broad-cidr-needs-approval"
        ? { ...r, body: withDefaults({ ...DEFAULT_RULES.find((d) => d.name === r.body.name)!, when: { op: "all", of: [{ op: "eq", field: "action.type", value: "block_entity" }, { op: "cidr_prefix_len", field: "entity.cidr", family: 4, cmp: "lt", value: 16 }] } }) }
        : r,
    );
    const report = runRuleTests(changed, fixtures, { coverage: true });
    expect(report.coverage!.percent).toBe(100);
    const failure = report.failures.find((f) => f.name === "a public IPv4 /16 needs one approver")!;
    expect(failure.problems.join("\n")).toContain("broad-cidr-needs-approval did not match: needs entity.cidr prefix < /16 for IPv4, but entity.cidr is 45.95.0.0/16 (IPv4, prefix /16)");
    const partial = runRuleTests(rules, fixtures.filter((f) => !f.file!.includes("lockdown")), { coverage: true });
    expect(partial.failures).toEqual([]);
    expect(partial.coverage!.percent).toBeLessThan(100);
    expect(partial.coverage!.rules.find((r) => r.name === "lockdown-needs-two-approvers")!.matched).toBe(0);
    expect(partial.coverage!.branches.filter((b) => b.rule === "lockdown-needs-two-approvers" && b.true === 0).map((b) => b.pointer)).toEqual(["/when", "/when/of/0", "/when/of/1"]);
  });
});

describe("action types", () => {
  it("the catalogue names exactly the action workflow's registry", async () => {
    const { KNOWN_ACTION_TYPES } = await import("./catalogue.ts");
    const { ACTION_TYPE_NAMES } = await import("../actions/registry.ts");
    expect([...KNOWN_ACTION_TYPES].sort()).toEqual([...ACTION_TYPE_NAMES].sort());
  });
});
