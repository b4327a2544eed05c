// Rule engine: decisions per second and ns per decision for the shipped default set and a generated
// 100-rule set (with and without explanations), beside a decision by an empty rule set measured in
// the same run (the fixed cost: canonical input, per-decision context, the answer object); compile
// time per activation and validation time per rule on save. Direct: node --import tsx bench/rules.bench.ts
import { pathToFileURL } from "node:url";
import { CompiledRuleSet, type DecisionInput } from "../src/domains/rules/engine.ts";
import { withDefaults, type Expr, type RuleDocument } from "../src/domains/rules/expression.ts";
import { DEFAULT_RULES } from "../src/domains/rules/defaults/default-rules.ts";
import { validateRuleDocument } from "../src/domains/rules/validation.ts";
import { mulberry32 } from "../src/lib/prng.ts";
import { measure, percentile, printTable, type BenchRow } from "./table.ts";

const POOL = 1 << 12;
const BATCH = 1000;
const ITERATIONS = 1000;
const ACTION_TYPES = ["block_entity", "unblock_entity", "set_mode", "update_policy", "revoke_api_key", "disable_user", "deactivate_honeypot", "quarantine_host", "disable_account", "rotate_key"];
const MODES = ["normal", "elevated", "lockdown"] as const;

/** A realistic input: mostly IP blocks of public attackers, some CIDRs, users and mode switches. */
export function makeInputs(seed: number): DecisionInput[] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const octet = () => Math.floor(rnd() * 223) + 1;
  const out: DecisionInput[] = [];
  for (let i = 0; i < POOL; i++) {
    const type = rnd() < 0.6 ? "block_entity" : pick(ACTION_TYPES);
    const input: Record<string, unknown> = {
      action: { type, reason: pick(["ssh brute force", "web exploit attempt", "port scan", "credential stuffing from botnet"]) },
      policy: { mode: pick(MODES) },
      principal: { kind: "user", role: pick(["analyst", "admin"]), id: `user:${i % 17}` },
      evidence: { honeypot_hits_24h: Math.floor(rnd() * 40), sensors: ["cowrie-eu-1"] },
      source: { exploitation_seen_1h: rnd() < 0.3, events_1h: Math.floor(rnd() * 500) },
      time: { now: new Date(Date.UTC(2026, 10, 1) + Math.floor(rnd() * 30 * 86_400_000)).toISOString() },
    };
    if (type === "block_entity" || type === "unblock_entity") {
      const v6 = rnd() < 0.2;
      input.entity = { type: "ip", ip: v6 ? `2a01:4f8:${Math.floor(rnd() * 65535).toString(16)}::${Math.floor(rnd() * 65535).toString(16)}` : `${octet()}.${octet()}.${octet()}.${octet()}`, family: v6 ? 6 : 4 };
    } else if (type === "block_entity" || type === "unblock_entity") {
      const prefix = 8 + Math.floor(rnd() * 24);
      input.entity = { type: "cidr", cidr: `${octet()}.${octet()}.0.0/${prefix}`, cidr_prefix: prefix, family: 4 };
    } else if (type === "set_mode") {
      (input.action as Record<string, unknown>).payload = { mode: pick(MODES) };
    } else input.entity = { type: "user" };
    out.push(input);
  }
  return out;
}

/** 100 rules in the shapes people write: a type guard, then thresholds, lists, ranges, text, time. */
export function generateRules(n: number, seed: number): RuleDocument[] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const outcomes = ["ALLOW", "DRY_RUN_ONLY", "REQUIRE_APPROVAL", "DENY"] as const;
  const rules: RuleDocument[] = [];
  for (let i = 0; i < n; i++) {
    const clauses: Expr[] = [rnd() < 0.7 ? { op: "eq", field: "action.type", value: pick(ACTION_TYPES) } : { op: "in", field: "action.type", values: [pick(ACTION_TYPES), pick(ACTION_TYPES)] }];
    const extra = 1 + Math.floor(rnd() * 3);
    for (let k = 0; k < extra; k++) {
      const kind = Math.floor(rnd() * 8);
      if (kind === 0) clauses.push({ op: "gt", field: "evidence.honeypot_hits_24h", value: Math.floor(rnd() * 30) });
      else if (kind === 1) clauses.push({ op: "in", field: "policy.mode", values: [pick(MODES)] });
      else if (kind === 2) clauses.push({ op: "ip_in", field: "entity.ip", cidrs: [`${Math.floor(rnd() * 223) + 1}.0.0.0/8`, `2a01:4f8::/32`] });
      else if (kind === 3) clauses.push({ op: "ip_is", field: "entity.ip", classes: ["public"] });
      else if (kind === 4) clauses.push({ op: "eq", field: "source.exploitation_seen_1h", value: rnd() < 0.5 });
      else if (kind === 5) clauses.push({ op: "any", of: [{ op: "eq", field: "principal.role", value: "admin" }, { op: "lt", field: "source.events_1h", value: 100 }] });
      else if (kind === 6) clauses.push({ op: "matches", field: "action.reason", pattern: pick(["brute", "^web ", "scan$", "(ssh|telnet)"]) });
      else clauses.push({ op: "time_between", hours: { from: 22, to: 6 } });
    }
    const outcome = pick(outcomes);
    rules.push({
      name: `generated-${i}`,
      target: "action_request",
      when: { op: "all", of: clauses },
      outcome,
      ...(outcome === "REQUIRE_APPROVAL" ? { approvals: 1 + Math.floor(rnd() * 2) } : {}),
      priority: Math.floor(rnd() * 1000),
    });
  }
  return rules;
}

const compile = (docs: readonly RuleDocument[]) =>
  new CompiledRuleSet(
    "action_request",
    docs.map((d) => ({ body: withDefaults(d), version: 1 })),
    { protectedNetworks: ["198.51.100.0/24"] },
  );

const pick = (r: { opsPerSec: number; p50Ns: number; p99Ns: number }) => ({ opsPerSec: r.opsPerSec, p50Ns: r.p50Ns, p99Ns: r.p99Ns });

export async function runRulesBench(options: { log?: (line: string) => void } = {}): Promise<BenchRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const inputs = makeInputs(0x5eed);
  const mask = POOL - 1;
  const generated = generateRules(100, 0xbead);
  for (const d of generated) if (validateRuleDocument(d).length) throw new Error(`generated rule ${d.name} is invalid`);
  const sets = { empty: compile([]), defaults: compile(DEFAULT_RULES), hundred: compile(generated) };
  const opts = { iterations: ITERATIONS, batch: BATCH };
  const rows: BenchRow[] = [];

  const refName = "decide: empty rule set (reference)";
  const ref = measure((i) => sets.empty.decide(inputs[i & mask]!, { explain: false }).outcome, opts);
  rows.push({ operation: refName, n: 0, ...pick(ref) });
  const decisionRows: [string, number, (i: number) => unknown][] = [
    ["decide: 6 default rules", 6, (i) => sets.defaults.decide(inputs[i & mask]!, { explain: false }).outcome],
    ["decide + explain: 6 default rules", 6, (i) => sets.defaults.decide(inputs[i & mask]!).not_matched.length],
    ["decide: 100 generated rules", 100, (i) => sets.hundred.decide(inputs[i & mask]!, { explain: false }).outcome],
    ["decide + explain: 100 generated rules", 100, (i) => sets.hundred.decide(inputs[i & mask]!).not_matched.length],
  ];
  for (const [operation, n, fn] of decisionRows) {
    const r = measure(fn, opts);
    rows.push({ operation, n, ...pick(r), reference: refName, ratio: r.opsPerSec / ref.opsPerSec });
  }

  // Compile: what one activation costs (validation excluded).
  const compileNs = new Float64Array(50);
  for (let k = 0; k < compileNs.length; k++) {
    const t0 = process.hrtime.bigint();
    compile(generated);
    compileNs[k] = Number(process.hrtime.bigint() - t0);
  }
  compileNs.sort();
  const compileMean = compileNs.reduce((a, b) => a + b, 0) / compileNs.length;
  rows.push({ operation: "compile 100 generated rules (one activation)", n: 100, opsPerSec: 1e9 / compileMean, p50Ns: percentile(compileNs, 0.5), p99Ns: percentile(compileNs, 0.99) });

  // Validation on save, per rule: schema per node, typed pass, regex safety.
  const docs = [...generated, ...DEFAULT_RULES];
  const v = measure((i) => validateRuleDocument(docs[i % docs.length]!).length === 0, { iterations: 200, batch: 100 });
  rows.push({ operation: "validate one rule (on save)", n: docs.length, ...pick(v) });

  // On a shared machine wall-clock numbers include time other processes had the CPU; the process's own
  // CPU time per decision shows what a decision costs when it runs.
  const cpuPerDecision = (set: CompiledRuleSet, n: number) => {
    const before = process.cpuUsage();
    let x = 0;
    for (let k = 0; k < n; k++) x += set.decide(inputs[k & mask]!, { explain: false }).matched.length;
    const used = process.cpuUsage(before);
    return { ns: ((used.user + used.system) * 1000) / n, x };
  };
  const cpuDefaults = cpuPerDecision(sets.defaults, 300_000);
  const cpuHundred = cpuPerDecision(sets.hundred, 300_000);
  log(`rules: CPU time per decision (this process only): 6 default rules ${cpuDefaults.ns.toFixed(0)} ns, 100 generated rules ${cpuHundred.ns.toFixed(0)} ns`);
  const matchedShare = inputs.reduce((s, input) => s + (sets.hundred.decide(input, { explain: false }).default_applied ? 0 : 1), 0) / POOL;
  log(`rules: 100-rule set matched something for ${(100 * matchedShare).toFixed(0)}% of ${POOL} inputs; default set outcomes: ${JSON.stringify(countOutcomes(sets.defaults, inputs))}`);
  return rows;
}

function countOutcomes(set: CompiledRuleSet, inputs: DecisionInput[]) {
  const counts: Record<string, number> = {};
  for (const input of inputs) {
    const o = set.decide(input, { explain: false }).outcome;
    counts[o] = (counts[o] ?? 0) + 1;
  }
  return counts;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printTable(await runRulesBench());
}
