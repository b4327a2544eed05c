// Rule validation: every operator's accepted shape, every kind of error with its JSON pointer, the
// full JSON Schema agreeing with the node-by-node validator, hostile nesting, and regex safety.
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import type { Expr } from "./expression.ts";
import { DEFAULT_RULES } from "./defaults/default-rules.ts";
import { compileSafeRegex, hasNestedRepetition, LINEAR_REGEX_ENGINE, MAX_PATTERN_LENGTH } from "./safe-regex.ts";
import { ruleJsonSchema, validateRuleDocument, validateInput } from "./validation.ts";

const doc = (when: unknown, extra: Record<string, unknown> = {}) => ({ name: "r", target: "action_request", when, outcome: "DENY", ...extra });
const errors = (when: unknown, extra: Record<string, unknown> = {}) => validateRuleDocument(doc(when, extra)).map((e) => [e.pointer, e.keyword]);

const VALID: Expr[] = [
  { op: "all", of: [{ op: "exists", field: "action.type" }] },
  { op: "any", of: [{ op: "exists", field: "action.type" }, { op: "exists", field: "entity.ip" }] },
  { op: "not", expr: { op: "exists", field: "action.type" } },
  { op: "eq", field: "action.type", value: "block_entity" },
  { op: "ne", field: "source.exploitation_seen_1h", value: false },
  { op: "lt", field: "evidence.honeypot_hits_24h", value: 3 },
  { op: "le", field: "entity.cidr_prefix", value: 24 },
  { op: "gt", field: "time.hour", value: 17 },
  { op: "ge", field: "action.payload.duration_seconds", value: 60 },
  { op: "in", field: "policy.mode", values: ["elevated", "lockdown"] },
  { op: "contains", field: "evidence.sensors", value: "cowrie-1" },
  { op: "starts_with", field: "principal.id", value: "system:" },
  { op: "ends_with", field: "action.payload.value", value: "/8" },
  { op: "matches", field: "action.reason", pattern: "^(ssh|telnet) brute" },
  { op: "exists", field: "entity.cidr" },
  { op: "ip_in", field: "entity.ip", cidrs: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"] },
  { op: "ip_is", field: "entity.cidr", classes: ["private", "protected"] },
  { op: "cidr_prefix_len", field: "entity.cidr", family: 6, cmp: "lt", value: 48 },
  { op: "time_between", hours: { from: 22, to: 6 }, weekdays: ["sat", "sun"], tz: "Europe/Berlin" },
  { op: "eq", field: "entity.ip", value: "::ffff:10.0.0.1" },
];

describe("rule documents", () => {
  it.each(VALID.map((e) => [e.op, e] as const))("accepts a well-formed %s", (_op, when) => {
    expect(validateRuleDocument(doc(when))).toEqual([]);
  });

  it("accepts the shipped defaults and an event rule", () => {
    for (const d of DEFAULT_RULES) expect(validateRuleDocument(d)).toEqual([]);
    expect(validateRuleDocument({ name: "scan-burst", target: "event", when: { op: "gt", field: "event.distinct_targets_10m", value: 20 }, outcome: "REQUIRE_APPROVAL", approvals: 1 })).toEqual([]);
    // A field of the other target is unknown here.
    expect(errors({ op: "gt", field: "event.count_10m", value: 1 })).toEqual([["/when/field", "unknown_field"]]);
  });

  const cases: [string, unknown, Record<string, unknown>, [string, string][]][] = [
    ["unknown operator", { op: "equals", field: "action.type", value: "x" }, {}, [["/when/op", "op"]]],
    ["missing op", { field: "action.type" }, {}, [["/when/op", "required"]]],
    ["unknown field", { op: "eq", field: "action.kind", value: "x" }, {}, [["/when/field", "unknown_field"]]],
    ["unknown property", { op: "eq", field: "action.type", value: "x", note: "" }, {}, [["/when/note", "unknown_property"]]],
    ["missing operand", { op: "eq", field: "action.type" }, {}, [["/when/value", "required"]]],
    ["operand of the wrong JSON type", { op: "lt", field: "evidence.honeypot_hits_24h", value: "3" }, {}, [["/when/value", "type"]]],
    ["value of the wrong field type (no coercion)", { op: "eq", field: "source.exploitation_seen_1h", value: "true" }, {}, [["/when/value", "value_type"]]],
    ["value outside the field's enum", { op: "in", field: "policy.mode", values: ["normal", "panic"] }, {}, [["/when/values/1", "value_type"]]],
    ["non-integer for an integer field", { op: "gt", field: "evidence.honeypot_hits_24h", value: 1.5 }, {}, [["/when/value", "value_type"]]],
    ["operator not applicable to the field type", { op: "starts_with", field: "evidence.honeypot_hits_24h", value: "1" }, {}, [["/when/op", "op_type"]]],
    ["ip operator on a string field", { op: "ip_in", field: "action.reason", cidrs: ["10.0.0.0/8"] }, {}, [["/when/op", "op_type"]]],
    ["invalid CIDR", { op: "ip_in", field: "entity.ip", cidrs: ["10.0.0.0/8", "10.0.0.0/33", "fe80::/129"] }, {}, [["/when/cidrs/1", "cidr"], ["/when/cidrs/2", "cidr"]]],
    ["invalid ip literal for an ip field", { op: "eq", field: "entity.ip", value: "010.0.0.1" }, {}, [["/when/value", "value_type"]]],
    ["unknown ip class", { op: "ip_is", field: "entity.ip", classes: ["privat"] }, {}, [["/when/classes/0", "enum"]]],
    ["IPv4 prefix above 32", { op: "cidr_prefix_len", field: "entity.cidr", family: 4, cmp: "lt", value: 40 }, {}, [["/when/value", "value_range"]]],
    ["empty all", { op: "all", of: [] }, {}, [["/when/of", "minItems"]]],
    ["time window without hours or weekdays", { op: "time_between" }, {}, [["/when", "required"]]],
    ["empty time window", { op: "time_between", hours: { from: 5, to: 5 } }, {}, [["/when/hours", "empty_window"]]],
    ["unknown time zone", { op: "time_between", hours: { from: 1, to: 5 }, tz: "Mars/Olympus" }, {}, [["/when/tz", "time_zone"]]],
    ["bad weekday", { op: "time_between", weekdays: ["monday"] }, {}, [["/when/weekdays/0", "enum"]]],
    ["unsafe regex", { op: "matches", field: "action.reason", pattern: "(?=x)" }, {}, [["/when/pattern", "regex"]]],
    ["invalid regex", { op: "matches", field: "action.reason", pattern: "([a-z]" }, {}, [["/when/pattern", "regex"]]],
    ["approvals with a non-approval outcome", { op: "exists", field: "action.type" }, { approvals: 2 }, [["/approvals", "approvals"]]],
    ["bad name", { op: "exists", field: "action.type" }, { name: "Block Everything" }, [["/name", "pattern"]]],
    ["reserved name", { op: "exists", field: "action.type" }, { name: "catalogue" }, [["/name", "reserved"]]],
    ["bad outcome", { op: "exists", field: "action.type" }, { outcome: "BLOCK" }, [["/outcome", "enum"]]],
    ["unknown top-level property", { op: "exists", field: "action.type" }, { enabled: true }, [["/enabled", "unknown_property"]]],
    ["bad mode", { op: "exists", field: "action.type" }, { mode: "audit" }, [["/mode", "enum"]]],
  ];
  it.each(cases)("reports %s at its pointer", (_label, when, extra, expected) => {
    expect(errors(when, extra)).toEqual(expected);
  });

  it("reports every problem in one pass, inside nested expressions too", () => {
    const when = {
      op: "any",
      of: [
        { op: "not", expr: { op: "eq", field: "action.typo", value: "x" } },
        { op: "all", of: [{ op: "gt", field: "time.hour", value: "9" }, { op: "frobnicate" }] },
        { op: "eq", field: "policy.mode", value: "lockdwon" },
      ],
    };
    expect(errors(when)).toEqual([
      ["/when/of/0/expr/field", "unknown_field"],
      ["/when/of/1/of/0/value", "type"],
      ["/when/of/1/of/1/op", "op"],
      ["/when/of/2/value", "value_type"],
    ]);
    const hint = validateRuleDocument(doc(when)).find((e) => e.pointer === "/when/of/2/value")!;
    expect(hint.message).toContain('"lockdown"');
  });

  it("refuses a missing or unknown target before anything else", () => {
    expect(validateRuleDocument({ name: "r", when: {}, outcome: "DENY" }).map((e) => e.pointer)).toEqual(["/target"]);
    expect(validateRuleDocument({ ...doc({}), target: "network" }).map((e) => e.pointer)).toEqual(["/target"]);
    expect(validateRuleDocument([1, 2])).toHaveLength(1);
  });

  it("refuses hostile nesting without overflowing the stack", () => {
    let deep: unknown = { op: "exists", field: "action.type" };
    for (let i = 0; i < 50_000; i++) deep = { op: "not", expr: deep };
    const issues = validateRuleDocument(doc(deep));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.keyword).toMatch(/too_(deep|large)/);
    let nested: unknown = { op: "exists", field: "action.type" };
    for (let i = 0; i < 30; i++) nested = { op: "not", expr: nested };
    expect(validateRuleDocument(doc(nested)).map((e) => e.keyword)).toEqual(["too_deep"]);
    const wide = { op: "any", of: Array.from({ length: 100 }, () => ({ op: "all", of: Array.from({ length: 6 }, () => ({ op: "exists", field: "action.type" })) })) };
    expect(validateRuleDocument(doc(wide)).map((e) => e.keyword)).toContain("too_large");
  });

  it("publishes a complete JSON Schema that agrees with the validator", () => {
    const ajv = new Ajv({ discriminator: true, allowUnionTypes: true, strict: false });
    const check = ajv.compile(ruleJsonSchema("action_request"));
    for (const when of VALID) expect(check(doc(when)), JSON.stringify(when)).toBe(true);
    expect(check(doc({ op: "eq", field: "action.kind", value: 1 }))).toBe(false);
    expect(check(doc({ op: "not", expr: { op: "nope" } }))).toBe(false);
  });
});

describe("decision inputs", () => {
  it("accepts the catalogue's shape and refuses everything else with pointers", () => {
    expect(validateInput("action_request", { action: { type: "block_entity", payload: { value: "1.2.3.4" } }, entity: { type: "ip", ip: "::ffff:1.2.3.4" }, time: { now: "2026-11-20T10:00:00Z" } })).toEqual([]);
    expect(validateInput("event", { event: { type: "auth_attempt", count_10m: 3 }, source: { ip: "5.188.86.172" } })).toEqual([]);
    const issues = validateInput("event", { event: { count_10m: -1 }, action: {}, time: { now: "yesterday" } });
    expect(issues.map((i) => i.pointer).sort()).toEqual(["/action", "/event/count_10m", "/time/now"]);
    expect(validateInput("action_request", "x")).toHaveLength(1);
  });
});

describe("regular expressions", () => {
  it("compiles ordinary patterns and refuses backreferences, lookaround and long patterns", () => {
    expect(compileSafeRegex("^ssh-[0-9]+$").ok).toBe(true);
    for (const p of ["(a)\\1", "(?<x>a)\\k<x>", "a(?=b)", "a(?!b)", "(?<=a)b", "(?<!a)b", "x".repeat(MAX_PATTERN_LENGTH + 1), ""]) {
      expect(compileSafeRegex(p).ok, p).toBe(false);
    }
  });

  it("runs the classic ReDoS pattern in linear time, or refuses it", () => {
    const r = compileSafeRegex("^(a+)+$");
    if (LINEAR_REGEX_ENGINE) {
      expect(r.ok).toBe(true);
      // On a backtracking engine this input takes longer than the age of the universe.
      if (r.ok) expect(r.regex.test(`${"a".repeat(4000)}!`)).toBe(false);
    } else expect(r.ok).toBe(false);
  });

  it("spots nested repetition for the fallback engine", () => {
    for (const p of ["(a+)+", "(a|aa)*", "(\\d*)+x", "((ab)+c)*", "([a-z]+){2,}"]) expect(hasNestedRepetition(p), p).toBe(true);
    for (const p of ["^a+b+$", "(ab)+", "(a|b)", "[a-z]+(x)?", "(a+)?", "\\(a+\\)+"]) expect(hasNestedRepetition(p), p).toBe(false);
  });
});
