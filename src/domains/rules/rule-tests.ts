// Table-driven rule tests: fixture files `{name, input, expect: {decision, matched}}` run against a
// rule set, each failure explained with the clauses that decided it, and optional branch coverage
// (every expression node seen both true and false). Used by `portcullis rules test` and the test suite.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { TARGETS, type Target } from "./catalogue.ts";
import { CompiledRuleSet, type CoverageReport, type DecisionInput, type EngineDecision, type EngineOptions } from "./engine.ts";
import { DECISIONS, type RuleBody } from "./expression.ts";
import { validateInput } from "./validation.ts";

export const fixtureSchema = z.strictObject({
  name: z.string().min(1).max(200),
  file: z.string().max(1000).optional().describe("where the fixture came from, for reports"),
  target: z.enum(TARGETS).default("action_request"),
  input: z.record(z.string(), z.unknown()),
  expect: z.strictObject({
    decision: z.enum(DECISIONS),
    /** Names of the enforced rules that must match, exactly (order ignored). */
    matched: z.array(z.string()).optional(),
    approvals_required: z.number().int().min(0).optional(),
    shadow_matched: z.array(z.string()).optional(),
  }),
});
export type Fixture = z.infer<typeof fixtureSchema>;

export class FixtureFileError extends Error {}

/** Fixtures from a JSON file holding one fixture or an array of them. */
export const parseFixtures = (text: string, file: string): Fixture[] => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new FixtureFileError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  const items = Array.isArray(parsed) ? parsed : [parsed];
  return items.map((item, k) => {
    const result = fixtureSchema.safeParse(item);
    if (!result.success) {
      const first = result.error.issues[0]!;
      const at = [...(Array.isArray(parsed) ? [k] : []), ...first.path].join(".");
      throw new FixtureFileError(`${file}: fixture ${at || "(root)"}: ${first.message}`);
    }
    return { ...result.data, file };
  });
};

/** Every *.json file under `dir` (recursively), in name order. */
export const loadFixtureDir = (dir: string): Fixture[] => {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d).sort()) {
      const path = join(d, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith(".json")) files.push(path);
    }
  };
  walk(dir);
  return files.flatMap((f) => parseFixtures(readFileSync(f, "utf8"), f));
};

export type FixtureFailure = { name: string; file?: string; problems: string[]; decision?: EngineDecision };
export type RuleTestReport = {
  total: number;
  passed: number;
  failures: FixtureFailure[];
  coverage?: CoverageReport;
};

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);

/** Runs fixtures against rules (stored versions or candidates). */
export const runRuleTests = (
  rules: readonly { body: RuleBody; version: number | null }[],
  fixtures: readonly Fixture[],
  options: Omit<EngineOptions, "coverage"> & { coverage?: boolean } = {},
): RuleTestReport => {
  const sets = new Map<Target, { plain: CompiledRuleSet; counted?: CompiledRuleSet }>();
  for (const target of TARGETS) {
    const own = rules.filter((r) => r.body.target === target);
    sets.set(target, {
      plain: new CompiledRuleSet(target, own, { ...options, coverage: false }),
      ...(options.coverage ? { counted: new CompiledRuleSet(target, own, { ...options, coverage: true }) } : {}),
    });
  }
  const failures: FixtureFailure[] = [];
  for (const fixture of fixtures) {
    const { plain, counted } = sets.get(fixture.target)!;
    const problems: string[] = [];
    const inputIssues = validateInput(fixture.target, fixture.input);
    if (inputIssues.length) {
      failures.push({ name: fixture.name, ...(fixture.file ? { file: fixture.file } : {}), problems: inputIssues.map((i) => `input ${i.path || "(root)"}: ${i.message}`) });
      continue;
    }
    counted?.decide(fixture.input as DecisionInput, { explain: false });
    const decision = plain.decide(fixture.input as DecisionInput, { explain: true });
    const expect = fixture.expect;
    const matchedNames = decision.matched.map((m) => m.name);
    if (decision.outcome !== expect.decision)
      problems.push(
        `decision is ${decision.outcome}, expected ${expect.decision}` +
          (decision.default_applied ? " (no rule matched: the default applied)" : ` (decided by ${decision.deciding_rule!.name})`),
      );
    if (expect.matched && !sameSet(matchedNames, expect.matched)) {
      problems.push(`matched [${matchedNames.join(", ")}], expected [${expect.matched.join(", ")}]`);
      for (const name of expect.matched.filter((n) => !matchedNames.includes(n))) {
        const miss = decision.not_matched.find((n) => n.name === name);
        problems.push(miss ? `  ${name} did not match: ${miss.failed_clause.explanation} (at ${miss.failed_clause.pointer})` : `  ${name} is not in the rule set`);
      }
      for (const name of matchedNames.filter((n) => !expect.matched!.includes(n))) problems.push(`  ${name} matched but was not expected`);
    }
    if (expect.approvals_required !== undefined && decision.approvals_required !== expect.approvals_required)
      problems.push(`approvals_required is ${decision.approvals_required}, expected ${expect.approvals_required}`);
    if (expect.shadow_matched && !sameSet(decision.shadow_matched.map((m) => m.name), expect.shadow_matched))
      problems.push(`shadow rules matched [${decision.shadow_matched.map((m) => m.name).join(", ")}], expected [${expect.shadow_matched.join(", ")}]`);
    if (problems.length) failures.push({ name: fixture.name, ...(fixture.file ? { file: fixture.file } : {}), problems, decision });
  }
  const report: RuleTestReport = { total: fixtures.length, passed: fixtures.length - failures.length, failures };
  if (options.coverage) {
    const parts = TARGETS.map((t) => sets.get(t)!.counted!.coverage());
    const covered = parts.reduce((s, p) => s + p.covered, 0);
    const total = parts.reduce((s, p) => s + p.total, 0);
    report.coverage = {
      rules: parts.flatMap((p) => p.rules),
      branches: parts.flatMap((p) => p.branches),
      covered,
      total,
      percent: total === 0 ? 100 : Math.floor((1000 * covered) / total) / 10,
    };
  }
  return report;
};
