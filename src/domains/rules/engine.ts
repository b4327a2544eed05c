// The rule engine: validated rules are compiled once into closures (one per expression node) and
// grouped into an immutable CompiledRuleSet per target; a decision runs those closures, combines the
// outcomes (DENY > REQUIRE_APPROVAL > DRY_RUN_ONLY > ALLOW, a default when nothing matches) and can
// explain, for every rule that did not match, the first clause that failed. Compiling is the slow
// part and happens per activation; a decision parses only the input values its rules read (once
// each), and allocates little beyond the answer.
import { normalizeCidr, normalizeIp } from "../../lib/ip.ts";
import { classesOf, overlaps, toAddr, type Addr } from "./addresses.ts";
import { CATALOGUE, WEEKDAYS, type FieldSpec, type Target } from "./catalogue.ts";
import { DECISION_RANK, type Comparator, type Decision, type Expr, type IpClassName, type Op, type RuleBody, type RuleMode } from "./expression.ts";
import { compileSafeRegex, MAX_MATCH_INPUT } from "./safe-regex.ts";

export type DecisionInput = Record<string, unknown>;

/**
 * Per-decision values computed at most once and shared by every rule: the derived fields (lazily:
 * a set without time rules never parses time.now) and parsed addresses per field slot.
 */
class Ctx {
  timeParsed = false;
  private now: number | undefined;
  private date: Date | undefined;
  /**
   * Values computed so far, by slot (numbered per rule set): field values (MISSING when absent),
   * canonical addresses, parsed ranges, IP classes, protected-network hits. undefined = not yet.
   */
  readonly slots: unknown[];
  constructor(
    readonly input: DecisionInput,
    readonly typeHasRule: boolean | undefined,
    slotCount: number,
  ) {
    this.slots = new Array(slotCount);
  }
  get nowMs(): number | undefined {
    if (!this.timeParsed) {
      this.timeParsed = true;
      const time = this.input.time as Record<string, unknown> | undefined;
      const text = time !== null && typeof time === "object" ? time.now : undefined;
      const ms = typeof text === "string" ? Date.parse(text) : Number.NaN;
      if (Number.isFinite(ms)) {
        this.now = ms;
        this.date = new Date(ms);
      }
    }
    return this.now;
  }
  get hour(): number | undefined {
    return this.nowMs === undefined ? undefined : this.date!.getUTCHours();
  }
  get weekday(): string | undefined {
    return this.nowMs === undefined ? undefined : WEEKDAYS[(this.date!.getUTCDay() + 6) % 7];
  }
}

type Test = (input: DecisionInput, ctx: Ctx) => boolean;

export type CompiledNode = {
  id: number;
  pointer: string;
  op: Op;
  /** The condition in words, for explanations. */
  text: string;
  test: Test;
  children: CompiledNode[];
  /** Leaves: what the input holds for the field(s) tested, in words. */
  actual?: (input: DecisionInput, ctx: Ctx) => string;
};

export type FailedClause = { pointer: string; op: Op; explanation: string };
export type RuleSummary = { name: string; version: number | null; outcome: Decision; approvals: number | null; priority: number; mode: RuleMode };
export type NotMatched = { name: string; version: number | null; mode: RuleMode; failed_clause: FailedClause };

export type EngineDecision = {
  target: Target;
  outcome: Decision;
  approvals_required: number;
  deciding_rule: { name: string; version: number | null } | null;
  matched: RuleSummary[];
  shadow_matched: RuleSummary[];
  not_matched: NotMatched[];
  default_applied: boolean;
  /** Engine-computed fields as they were for this decision. */
  derived: Record<string, unknown>;
};

export type DefaultOutcome = { decision: Decision; approvals: number };

export type EngineOptions = {
  /** CIDRs behind the `protected` class of ip_is (config blocklist.protectedNetworks). */
  protectedNetworks?: readonly string[];
  defaultOutcome?: DefaultOutcome;
  /** Count each node's true/false outcomes (rule tests with --coverage); slower. */
  coverage?: boolean;
};

export type CompiledRule = RuleSummary & { body: RuleBody; root: CompiledNode; nodes: CompiledNode[]; counts?: number[]; summary: Readonly<RuleSummary> };

export type CoverageReport = {
  rules: { name: string; version: number | null; matched: number; not_matched: number }[];
  branches: { rule: string; pointer: string; op: Op; text: string; true: number; false: number }[];
  covered: number;
  total: number;
  percent: number;
};

const fmt = (v: unknown): string => (v === undefined ? "missing" : JSON.stringify(v));
const list = (values: readonly unknown[], max = 6) =>
  values.length <= max ? values.map((v) => JSON.stringify(v)).join(", ") : `${values.slice(0, max).map((v) => JSON.stringify(v)).join(", ")}, ... (${values.length} in all)`;

const MISSING = Symbol("missing");

const DERIVED_GETTERS: Record<string, (input: DecisionInput, ctx: Ctx) => unknown> = {
  "action.type_has_rule": (_i, c) => c.typeHasRule,
  "time.hour": (_i, c) => c.hour,
  "time.weekday": (_i, c) => c.weekday,
};

/** A closure reading a dotted path from nested plain objects; undefined when any step is missing. */
export const fieldGetter = (path: string): ((input: DecisionInput, ctx: Ctx) => unknown) => {
  const derived = DERIVED_GETTERS[path];
  if (derived) return derived;
  const parts = path.split(".");
  const step = (o: unknown, k: string) => (o !== null && typeof o === "object" && !Array.isArray(o) ? (o as Record<string, unknown>)[k] : undefined);
  if (parts.length === 1) {
    const [a] = parts as [string];
    return (i) => step(i, a);
  }
  if (parts.length === 2) {
    const [a, b] = parts as [string, string];
    return (i) => step(step(i, a), b);
  }
  if (parts.length === 3) {
    const [a, b, c] = parts as [string, string, string];
    return (i) => step(step(step(i, a), b), c);
  }
  return (i) => parts.reduce<unknown>((o, k) => step(o, k), i);
};

const comparatorText: Record<Comparator | "lt" | "le" | "gt" | "ge", string> = { lt: "<", le: "<=", gt: ">", ge: ">=", eq: "=" };
const compare = (cmp: Comparator, a: number, b: number) =>
  cmp === "lt" ? a < b : cmp === "le" ? a <= b : cmp === "gt" ? a > b : cmp === "ge" ? a >= b : a === b;

const canonical = (spec: FieldSpec, value: unknown): unknown => {
  if (typeof value !== "string") return value;
  if (spec.type === "ip") return normalizeIp(value) ?? value;
  if (spec.type === "cidr") return normalizeCidr(value)?.text ?? value;
  return value;
};

const tzFormatters = new Map<string, Intl.DateTimeFormat>();
const zonedHourAndDay = (ms: number, tz: string): { hour: number; weekday: string } => {
  let f = tzFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone: tz, hour: "numeric", hourCycle: "h23", weekday: "short" });
    tzFormatters.set(tz, f);
  }
  let hour = 0;
  let weekday = "mon";
  for (const p of f.formatToParts(new Date(ms))) {
    if (p.type === "hour") hour = Number(p.value) % 24;
    else if (p.type === "weekday") weekday = p.value.toLowerCase().slice(0, 3);
  }
  return { hour, weekday };
};

const inWindow = (hour: number, from: number, to: number) => (from < to ? hour >= from && hour < to : hour >= from || hour < to);

/** Compiles one rule's expression into closures. `counts` (coverage) receives node outcomes. */
const compileRule = (
  body: RuleBody,
  opts: { protectedRanges: Addr[]; counts?: number[]; slotOf: (field: string) => number },
): { root: CompiledNode; nodes: CompiledNode[] } => {
  const catalogue = CATALOGUE[body.target];
  const nodes: CompiledNode[] = [];
  const counts = opts.counts;

  // A field's value is read from the input once per decision and shared by every clause of every rule
  // (one generic property walk per field, instead of one per clause).
  const valueGetter = (field: string) => {
    const read = fieldGetter(field);
    if (DERIVED_GETTERS[field]) return read;
    const slot = opts.slotOf(`value:${field}`);
    return (i: DecisionInput, c: Ctx): unknown => {
      const cache = c.slots;
      let v = cache[slot];
      if (v === undefined) {
        v = read(i, c);
        cache[slot] = v === undefined ? MISSING : v;
        return v;
      }
      return v === MISSING ? undefined : v;
    };
  };

  // Parsed once per decision and field, in slots shared by every rule of the set.
  const addrOf = (field: string, get: (i: DecisionInput, c: Ctx) => unknown) => {
    const slot = opts.slotOf(`addr:${field}`);
    return (i: DecisionInput, c: Ctx): Addr | null => {
      const cache = c.slots;
      let a = cache[slot] as Addr | null | undefined;
      if (a === undefined) {
        const v = get(i, c);
        a = typeof v === "string" ? toAddr(v) : null;
        cache[slot] = a;
      }
      return a;
    };
  };
  // The classes an address is in: for a CIDR every special class any of its addresses is in, or
  // just "public" when it touches no special space.
  const classesFor = (field: string, get: (i: DecisionInput, c: Ctx) => unknown) => {
    const slot = opts.slotOf(`classes:${field}`);
    const addr = addrOf(field, get);
    return (i: DecisionInput, c: Ctx): readonly string[] | null => {
      const cache = c.slots;
      let k = cache[slot] as readonly string[] | null | undefined;
      if (k === undefined) {
        const a = addr(i, c);
        k = a === null ? null : classesOf(a);
        cache[slot] = k;
      }
      return k;
    };
  };
  const protectedFor = (field: string, get: (i: DecisionInput, c: Ctx) => unknown) => {
    const slot = opts.slotOf(`protected:${field}`);
    const addr = addrOf(field, get);
    return (i: DecisionInput, c: Ctx): boolean => {
      const cache = c.slots;
      let hit = cache[slot] as boolean | undefined;
      if (hit === undefined) {
        const a = addr(i, c);
        hit = a !== null && opts.protectedRanges.some((p) => overlaps(p, a));
        cache[slot] = hit;
      }
      return hit;
    };
  };

  const compile = (expr: Expr, pointer: string): CompiledNode => {
    const id = nodes.length;
    const node: CompiledNode = { id, pointer, op: expr.op, text: "", test: () => false, children: [] };
    nodes.push(node);
    switch (expr.op) {
      case "all": {
        const kids = expr.of.map((e, k) => compile(e, `${pointer}/of/${k}`));
        node.children = kids;
        const tests = kids.map((k) => k.test);
        node.text = `all of (${kids.map((k) => k.text).join("; ")})`;
        node.test =
          tests.length === 1
            ? tests[0]!
            : tests.length === 2
              ? ((a, b) => (i: DecisionInput, c: Ctx) => a(i, c) && b(i, c))(tests[0]!, tests[1]!)
              : (i, c) => {
                  for (let k = 0; k < tests.length; k++) if (!tests[k]!(i, c)) return false;
                  return true;
                };
        break;
      }
      case "any": {
        const kids = expr.of.map((e, k) => compile(e, `${pointer}/of/${k}`));
        node.children = kids;
        const tests = kids.map((k) => k.test);
        node.text = `any of (${kids.map((k) => k.text).join("; ")})`;
        node.test = (i, c) => {
          for (let k = 0; k < tests.length; k++) if (tests[k]!(i, c)) return true;
          return false;
        };
        break;
      }
      case "not": {
        const kid = compile(expr.expr, `${pointer}/expr`);
        node.children = [kid];
        const t = kid.test;
        node.text = `not (${kid.text})`;
        node.test = (i, c) => !t(i, c);
        break;
      }
      case "time_between": {
        const { hours, weekdays, tz } = expr;
        const days = weekdays ? new Set(weekdays) : undefined;
        const parts: string[] = [];
        if (hours) parts.push(`between ${hours.from}:00 and ${hours.to}:00`);
        if (weekdays) parts.push(`on ${weekdays.join(", ")}`);
        node.text = `time.now is ${parts.join(" ")} (${tz ?? "UTC"})`;
        const local = (c: Ctx) => (tz && c.nowMs !== undefined ? zonedHourAndDay(c.nowMs, tz) : { hour: c.hour, weekday: c.weekday });
        node.test = (_i, c) => {
          if (c.nowMs === undefined) return false;
          const { hour, weekday } = local(c);
          if (hours && !inWindow(hour!, hours.from, hours.to)) return false;
          if (days && !days.has(weekday!)) return false;
          return true;
        };
        node.actual = (_i, c) => {
          if (c.nowMs === undefined) return "time.now is missing";
          const { hour, weekday } = local(c);
          return `time.now is ${new Date(c.nowMs).toISOString()}, hour ${hour} on ${weekday} (${tz ?? "UTC"})`;
        };
        break;
      }
      default:
        compileLeaf(expr, node);
    }
    if (counts) {
      const inner = node.test;
      const slot = id * 2;
      while (counts.length < slot + 2) counts.push(0);
      node.test = (i, c) => {
        const r = inner(i, c);
        counts[slot + (r ? 1 : 0)]!++;
        return r;
      };
    }
    return node;
  };

  // Addresses compare in canonical form (one address, one spelling), computed once per decision.
  const canonicalGetter = (field: string, spec: FieldSpec, raw: (i: DecisionInput, c: Ctx) => unknown) => {
    if (spec.type !== "ip" && spec.type !== "cidr") return raw;
    const slot = opts.slotOf(`canonical:${field}`);
    return (i: DecisionInput, c: Ctx): unknown => {
      const cache = c.slots;
      let v = cache[slot];
      if (v === undefined) {
        v = canonical(spec, raw(i, c));
        cache[slot] = v === undefined ? MISSING : v;
        return v;
      }
      return v === MISSING ? undefined : v;
    };
  };

  const compileLeaf = (expr: Exclude<Expr, { op: "all" | "any" | "not" | "time_between" }>, node: CompiledNode) => {
    const field = expr.field;
    const spec = catalogue[field]!;
    const raw = valueGetter(field);
    const get = expr.op === "eq" || expr.op === "ne" || expr.op === "in" ? canonicalGetter(field, spec, raw) : raw;
    node.actual = (i, c) => `${field} is ${fmt(get(i, c))}`;
    switch (expr.op) {
      case "eq": {
        const want = canonical(spec, expr.value);
        node.text = `${field} = ${fmt(want)}`;
        node.test = (i, c) => get(i, c) === want;
        return;
      }
      case "ne": {
        const want = canonical(spec, expr.value);
        node.text = `${field} != ${fmt(want)}`;
        node.test = (i, c) => {
          const v = get(i, c);
          return v !== undefined && v !== want;
        };
        return;
      }
      case "lt":
      case "le":
      case "gt":
      case "ge": {
        const want = expr.value;
        const cmp = expr.op;
        node.text = `${field} ${comparatorText[cmp]} ${want}`;
        node.test =
          cmp === "lt"
            ? (i, c) => {
                const v = get(i, c);
                return typeof v === "number" && v < want;
              }
            : cmp === "le"
              ? (i, c) => {
                  const v = get(i, c);
                  return typeof v === "number" && v <= want;
                }
              : cmp === "gt"
                ? (i, c) => {
                    const v = get(i, c);
                    return typeof v === "number" && v > want;
                  }
                : (i, c) => {
                    const v = get(i, c);
                    return typeof v === "number" && v >= want;
                  };
        return;
      }
      case "in": {
        const values = expr.values.map((v) => canonical(spec, v));
        node.text = `${field} in [${list(values)}]`;
        if (values.length > 8) {
          const set = new Set(values);
          node.test = (i, c) => {
            const v = get(i, c);
            return v !== undefined && set.has(v);
          };
        } else {
          node.test = (i, c) => {
            const v = get(i, c);
            if (v === undefined) return false;
            for (let k = 0; k < values.length; k++) if (values[k] === v) return true;
            return false;
          };
        }
        return;
      }
      case "contains": {
        const want = expr.value;
        node.text = `${field} contains ${fmt(want)}`;
        node.test =
          spec.type === "string_list"
            ? (i, c) => {
                const v = get(i, c);
                return Array.isArray(v) && v.includes(want);
              }
            : (i, c) => {
                const v = get(i, c);
                return typeof v === "string" && v.includes(want);
              };
        return;
      }
      case "starts_with": {
        const want = expr.value;
        node.text = `${field} starts with ${fmt(want)}`;
        node.test = (i, c) => {
          const v = get(i, c);
          return typeof v === "string" && v.startsWith(want);
        };
        return;
      }
      case "ends_with": {
        const want = expr.value;
        node.text = `${field} ends with ${fmt(want)}`;
        node.test = (i, c) => {
          const v = get(i, c);
          return typeof v === "string" && v.endsWith(want);
        };
        return;
      }
      case "matches": {
        const compiled = compileSafeRegex(expr.pattern);
        if (!compiled.ok) throw new Error(`rule ${body.name}: ${compiled.message}`);
        const re = compiled.regex;
        node.text = `${field} matches /${expr.pattern}/`;
        node.test = (i, c) => {
          const v = get(i, c);
          return typeof v === "string" && v.length <= MAX_MATCH_INPUT && re.test(v);
        };
        node.actual = (i, c) => {
          const v = get(i, c);
          if (typeof v === "string" && v.length > MAX_MATCH_INPUT) return `${field} is longer than ${MAX_MATCH_INPUT} characters (never matched)`;
          return `${field} is ${fmt(v)}`;
        };
        return;
      }
      case "exists":
        node.text = `${field} is present`;
        node.test = (i, c) => get(i, c) !== undefined;
        node.actual = (i, c) => (get(i, c) === undefined ? `${field} is missing` : `${field} is present (${fmt(get(i, c))})`);
        return;
      case "ip_in": {
        const ranges = expr.cidrs.map((t) => toAddr(t)!);
        const addr = addrOf(field, get);
        node.text = `${field} is inside one of [${list(expr.cidrs)}]`;
        node.test = (i, c) => {
          const a = addr(i, c);
          if (a === null) return false;
          for (let k = 0; k < ranges.length; k++) if (overlaps(ranges[k]!, a)) return true;
          return false;
        };
        return;
      }
      case "ip_is": {
        const classes = new Set<IpClassName>(expr.classes);
        const wantProtected = classes.has("protected");
        const cls = classesFor(field, get);
        const isProtected = protectedFor(field, get);
        node.text = `${field} is ${[...classes].join(" or ")}${spec.type === "cidr" ? " (any address of the range)" : ""}`;
        node.test = (i, c) => {
          const found = cls(i, c);
          if (found === null) return false;
          for (let k = 0; k < found.length; k++) if (classes.has(found[k] as IpClassName)) return true;
          return wantProtected && isProtected(i, c);
        };
        node.actual = (i, c) => {
          const v = get(i, c);
          if (v === undefined) return `${field} is missing`;
          const found = cls(i, c);
          return `${field} is ${fmt(canonical(spec, v))} (${found ? found.join(", ") : "not an address"}${isProtected(i, c) ? ", protected" : ""})`;
        };
        return;
      }
      case "cidr_prefix_len": {
        const { family, cmp, value } = expr;
        node.text = `${field} prefix ${comparatorText[cmp]} /${value}${family ? ` for IPv${family}` : ""}`;
        node.test = (i, c) => {
          const v = get(i, c);
          if (typeof v !== "string") return false;
          const slash = v.indexOf("/");
          if (slash < 0) return false;
          const fam = v.includes(":") ? 6 : 4;
          if (family !== undefined && fam !== family) return false;
          return compare(cmp, Number(v.slice(slash + 1)), value);
        };
        node.actual = (i, c) => {
          const v = get(i, c);
          if (typeof v !== "string") return `${field} is ${fmt(v)}`;
          return `${field} is ${v} (IPv${v.includes(":") ? 6 : 4}, prefix /${v.slice(v.indexOf("/") + 1)})`;
        };
        return;
      }
    }
  };

  const root = compile(body.when, "/when");
  return { root, nodes };
};

/** The first clause that made `node` false, in words. Runs only when asked, after the fast path. */
export const failedClause = (node: CompiledNode, input: DecisionInput, ctx: Ctx): FailedClause => {
  switch (node.op) {
    case "all": {
      const first = node.children.find((k) => !k.test(input, ctx));
      return first ? failedClause(first, input, ctx) : { pointer: node.pointer, op: node.op, explanation: "all clauses held" };
    }
    case "any": {
      const reasons = node.children.map((k) => failedClause(k, input, ctx).explanation);
      return { pointer: node.pointer, op: "any", explanation: `none of the ${reasons.length} alternatives held: ${reasons.map((r, k) => `(${k + 1}) ${r}`).join("; ")}` };
    }
    case "not": {
      const inner = node.children[0]!;
      return { pointer: node.pointer, op: "not", explanation: `needs not (${inner.text}), but it holds: ${describeHeld(inner, input, ctx)}` };
    }
    default:
      return { pointer: node.pointer, op: node.op, explanation: `needs ${node.text}, but ${node.actual!(input, ctx)}` };
  }
};

const describeHeld = (node: CompiledNode, input: DecisionInput, ctx: Ctx): string => {
  if (node.actual) return node.actual(input, ctx);
  if (node.op === "not") return `${node.children[0]!.text} does not hold`;
  const relevant = node.op === "all" ? node.children : node.children.filter((k) => k.test(input, ctx)).slice(0, 1);
  return relevant.map((k) => describeHeld(k, input, ctx)).join("; ");
};

/** Action types an enforced rule names positively (eq / in on action.type, not under a not). */
const namedActionTypes = (expr: Expr, positive: boolean, out: Set<string>) => {
  switch (expr.op) {
    case "all":
    case "any":
      for (const e of expr.of) namedActionTypes(e, positive, out);
      return;
    case "not":
      namedActionTypes(expr.expr, !positive, out);
      return;
    case "eq":
      if (positive && expr.field === "action.type" && typeof expr.value === "string") out.add(expr.value);
      return;
    case "in":
      if (positive && expr.field === "action.type") for (const v of expr.values) if (typeof v === "string") out.add(v);
      return;
  }
};

/** A guarded rule's test without its guard: the rest of its top-level `all` (or always true). */
const withoutGuard = (rule: CompiledRule): Test => {
  if (rule.root.op !== "all") return () => true;
  const rest = rule.root.children.slice(1).map((k) => k.test);
  if (rest.length === 0) return () => true;
  if (rest.length === 1) return rest[0]!;
  if (rest.length === 2) {
    const [a, b] = rest as [Test, Test];
    return (i, c) => a(i, c) && b(i, c);
  }
  return (i, c) => {
    for (let k = 0; k < rest.length; k++) if (!rest[k]!(i, c)) return false;
    return true;
  };
};

const protectedRangesOf = (networks: readonly string[]): Addr[] =>
  networks.map((n) => {
    const r = toAddr(n);
    if (!r) throw new Error(`protected network "${n}" is not an IP or CIDR`);
    return r;
  });

/**
 * The action types a rule is guarded by: a top-level `all` whose first clause is eq/in on action.type
 * (or the whole rule being such a clause). Such a rule cannot match another type, so the engine skips
 * it for other types; its failed clause is then that guard.
 */
const guardOf = (rule: CompiledRule): { types: string[]; node: CompiledNode } | undefined => {
  const when = rule.body.when;
  const first = when.op === "all" ? when.of[0]! : when;
  const node = when.op === "all" ? rule.root.children[0]! : rule.root;
  if (first.op === "eq" && first.field === "action.type" && typeof first.value === "string") return { types: [first.value], node };
  if (first.op === "in" && first.field === "action.type" && first.values.every((v) => typeof v === "string")) return { types: first.values as string[], node };
  return undefined;
};

// One frozen summary per compiled rule, shared by every decision that lists it (no allocation per match).
const summary = (r: CompiledRule): RuleSummary => r.summary;


/** An immutable, compiled set of rules for one target. Build a new one to change anything. */
export class CompiledRuleSet {
  readonly rules: readonly CompiledRule[];
  readonly coveredActionTypes: ReadonlySet<string>;
  private readonly defaultOutcome: DefaultOutcome;
  private readonly withCoverage: boolean;
  private readonly slotCount: number;
  /** Rules to evaluate per action.type (priority order), and for any other or missing type. */
  private readonly byType = new Map<string, CompiledRule[]>();
  private readonly untyped: CompiledRule[];
  /** Per type, the test to run for each rule of byType's list: a guarded rule skips its guard (known true). */
  private readonly testsByType = new Map<string, Test[]>();
  private readonly untypedTests: Test[];
  private readonly guards = new Map<CompiledRule, CompiledNode>();

  constructor(
    readonly target: Target,
    rules: readonly { body: RuleBody; version: number | null }[],
    options: EngineOptions = {},
  ) {
    const protectedRanges = protectedRangesOf(options.protectedNetworks ?? []);
    const slots = new Map<string, number>();
    const slotOf = (key: string) => {
      let slot = slots.get(key);
      if (slot === undefined) slots.set(key, (slot = slots.size));
      return slot;
    };
    this.defaultOutcome = options.defaultOutcome ?? { decision: "REQUIRE_APPROVAL", approvals: 1 };
    this.withCoverage = options.coverage === true;
    const compiled = rules.map(({ body, version }) => {
      if (body.target !== target) throw new Error(`rule ${body.name} targets ${body.target}, not ${target}`);
      const counts = this.withCoverage ? [] : undefined;
      const { root, nodes } = compileRule(body, { protectedRanges, slotOf, ...(counts ? { counts } : {}) });
      const summary = Object.freeze({ name: body.name, version, outcome: body.outcome, approvals: body.approvals, priority: body.priority, mode: body.mode });
      const rule: CompiledRule = { ...summary, body, root, nodes, summary };
      if (counts) rule.counts = counts;
      return rule;
    });
    // Priority orders evaluation and listing; it never overrides the outcome precedence.
    this.rules = compiled.sort((a, b) => b.priority - a.priority || DECISION_RANK[b.outcome] - DECISION_RANK[a.outcome] || a.name.localeCompare(b.name));
    const covered = new Set<string>();
    if (target === "action_request") for (const r of this.rules) if (r.mode === "enforce") namedActionTypes(r.body.when, true, covered);
    this.coveredActionTypes = covered;
    this.slotCount = slots.size;
    // The guard index (action requests only; coverage runs evaluate everything so every node counts).
    const guarded = new Map<CompiledRule, string[]>();
    if (target === "action_request" && !this.withCoverage)
      for (const r of this.rules) {
        const g = guardOf(r);
        if (g) {
          guarded.set(r, g.types);
          this.guards.set(r, g.node);
        }
      }
    this.untyped = this.rules.filter((r) => !guarded.has(r));
    this.untypedTests = this.untyped.map((r) => r.root.test);
    const types = new Set([...guarded.values()].flat());
    for (const type of types) {
      const list = this.rules.filter((r) => !guarded.has(r) || guarded.get(r)!.includes(type));
      this.byType.set(type, list);
      this.testsByType.set(type, list.map((r) => (guarded.has(r) ? withoutGuard(r) : r.root.test)));
    }
  }

  /** Decides; with explain (the default) every rule that did not match says which clause failed. */
  decide(rawInput: DecisionInput, options?: { explain?: boolean }): EngineDecision {
    const explain = options?.explain ?? true;
    const input = rawInput;
    const action = input.action as Record<string, unknown> | undefined;
    const type = action !== null && typeof action === "object" ? action.type : undefined;
    const ctx = new Ctx(input, this.target === "action_request" && typeof type === "string" ? this.coveredActionTypes.has(type) : undefined, this.slotCount);
    const typed = typeof type === "string" ? this.byType.get(type) : undefined;
    const candidates = typed ?? this.untyped;
    const tests = typed ? this.testsByType.get(type as string)! : this.untypedTests;
    const matched: RuleSummary[] = [];
    const shadow: RuleSummary[] = [];
    let best: CompiledRule | undefined;
    let approvals = 0;
    for (let k = 0; k < candidates.length; k++) {
      const rule = candidates[k]!;
      if (!tests[k]!(input, ctx)) continue;
      if (rule.mode === "shadow") {
        shadow.push(summary(rule));
        continue;
      }
      matched.push(summary(rule));
      if (!best || DECISION_RANK[rule.outcome] > DECISION_RANK[best.outcome]) best = rule;
      if (rule.outcome === "REQUIRE_APPROVAL" && rule.approvals! > approvals) approvals = rule.approvals!;
    }
    const notMatched: NotMatched[] = [];
    if (explain) {
      const hit = new Set<string>();
      for (const m of matched) hit.add(m.name);
      for (const m of shadow) hit.add(m.name);
      const evaluated = new Set(candidates);
      for (const rule of this.rules) {
        if (hit.has(rule.name)) continue;
        // A rule skipped by the guard index failed its guard; anything else is re-walked for the reason.
        const guard = evaluated.has(rule) ? undefined : this.guards.get(rule);
        notMatched.push({ name: rule.name, version: rule.version, mode: rule.mode, failed_clause: failedClause(guard ?? rule.root, input, ctx) });
      }
    }
    const outcome = best ? best.outcome : this.defaultOutcome.decision;
    const derived: Record<string, unknown> = {};
    if (ctx.typeHasRule !== undefined) derived["action.type_has_rule"] = ctx.typeHasRule;
    // Parsing time.now only for this report is skipped on the fast path.
    if ((explain || ctx.timeParsed) && ctx.nowMs !== undefined) {
      derived["time.hour"] = ctx.hour;
      derived["time.weekday"] = ctx.weekday;
    }
    return {
      target: this.target,
      outcome,
      approvals_required: outcome !== "REQUIRE_APPROVAL" ? 0 : best ? approvals : this.defaultOutcome.approvals,
      deciding_rule: best ? { name: best.name, version: best.version } : null,
      matched,
      shadow_matched: shadow,
      not_matched: notMatched,
      default_applied: best === undefined,
      derived,
    };
  }

  /** Node outcome counts so far (only when built with coverage). */
  coverage(): CoverageReport {
    if (!this.withCoverage) throw new Error("this rule set was not compiled with coverage");
    const rules: CoverageReport["rules"] = [];
    const branches: CoverageReport["branches"] = [];
    let covered = 0;
    let total = 0;
    for (const rule of this.rules) {
      const counts = rule.counts ?? [];
      rules.push({ name: rule.name, version: rule.version, matched: counts[1] ?? 0, not_matched: counts[0] ?? 0 });
      for (const node of rule.nodes) {
        const f = counts[node.id * 2] ?? 0;
        const t = counts[node.id * 2 + 1] ?? 0;
        total += 2;
        covered += (f > 0 ? 1 : 0) + (t > 0 ? 1 : 0);
        branches.push({ rule: rule.name, pointer: node.pointer, op: node.op, text: node.text, true: t, false: f });
      }
    }
    return { rules, branches, covered, total, percent: total === 0 ? 100 : Math.floor((1000 * covered) / total) / 10 };
  }
}
