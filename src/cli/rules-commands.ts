// `portcullis rules ...`: the rule lifecycle and reads over the HTTP API, plus local validation of
// rule files, fixture tests (on the server by default, `--offline` against the shipped defaults),
// explained evaluation and simulation. Exit codes: 0 ok, 1 invalid / failed / refused, 2 bad usage.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { apiClient, CliError, query } from "./client.ts";
import { printJson, printRecord, printTable } from "./output.ts";
import type { RuleDocument } from "../domains/rules/expression.ts";
import type { RuleTestReport } from "../domains/rules/rule-tests.ts";

// The rule language (ajv schemas, the engine) loads only when a command needs it, so every other
// `portcullis` command starts as fast as before.
const language = async () => {
  const [validation, ruleTests, defaults, expression] = await Promise.all([
    import("../domains/rules/validation.ts"),
    import("../domains/rules/rule-tests.ts"),
    import("../domains/rules/defaults/default-rules.ts"),
    import("../domains/rules/expression.ts"),
  ]);
  return { ...validation, ...ruleTests, ...defaults, ...expression };
};

type Json = Record<string, unknown>;
type Page<T> = { items: T[]; next_cursor: string | null };

const json = (cmd: Command) => Boolean(cmd.optsWithGlobals().json);
const RULE_COLUMNS = ["name", "version", "status", "target", "outcome", "approvals", "priority", "mode", "author"];

/** The shipped fixture suite, for `rules test --defaults`. */
export const DEFAULT_FIXTURE_DIR = fileURLToPath(new URL("../domains/rules/defaults/fixtures/", import.meta.url));

const readJson = (file: string): unknown => {
  let text: string;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (error) {
    throw new CliError(`${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 2);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file}: not valid JSON (${(error as Error).message})`, 2);
  }
};

/** Rule documents from files holding one document or an array of them. */
const readRuleFiles = (files: string[]): { file: string; index: number; doc: unknown }[] =>
  files.flatMap((file) => {
    const parsed = readJson(file);
    return (Array.isArray(parsed) ? parsed : [parsed]).map((doc, index) => ({ file, index, doc }));
  });

const positiveInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`${name} must be a positive whole number`, 2);
  return Number(v);
};
const percent = (v: string) => {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || n > 100) throw new CliError("--threshold must be a percentage between 0 and 100", 2);
  return n;
};
const collect = (value: string, previous: string[] = []) => [...previous, value];

const printVersion = (v: Json) => {
  const { when, review, ...rest } = v;
  printRecord({ ...rest, review: review ? `${(review as Json).decision} by ${(review as Json).reviewer}: ${(review as Json).comment}` : null });
  process.stdout.write(`when:\n${JSON.stringify(when, null, 2).replace(/^/gm, "  ")}\n`);
};

const printDecision = (d: Json) => {
  const matched = d.matched as Json[];
  process.stdout.write(
    `decision: ${String(d.outcome)}${d.outcome === "REQUIRE_APPROVAL" ? ` (${String(d.approvals_required)} approver${d.approvals_required === 1 ? "" : "s"})` : ""}` +
      `${d.default_applied ? " (default: no rule matched)" : ` by ${String((d.deciding_rule as Json).name)}`}\n`,
  );
  for (const m of matched) process.stdout.write(`  matched  ${String(m.name)}@${String(m.version ?? "candidate")}  ${String(m.outcome)}  priority ${String(m.priority)}\n`);
  for (const m of d.shadow_matched as Json[]) process.stdout.write(`  shadow   ${String(m.name)}@${String(m.version ?? "candidate")}  would be ${String(m.outcome)} (not enforced)\n`);
  for (const n of d.not_matched as Json[]) {
    const c = n.failed_clause as Json;
    process.stdout.write(`  no match ${String(n.name)}@${String(n.version ?? "candidate")}  ${String(c.pointer)}: ${String(c.explanation)}\n`);
  }
};

const printTestReport = (report: RuleTestReport, threshold: number | undefined) => {
  for (const f of report.failures) {
    process.stdout.write(`FAIL ${f.name}${f.file ? ` (${f.file})` : ""}\n`);
    for (const p of f.problems) process.stdout.write(`     ${p}\n`);
  }
  process.stdout.write(`${report.passed}/${report.total} fixtures passed\n`);
  if (report.coverage) {
    const cov = report.coverage;
    const unmatched = cov.rules.filter((r) => r.matched === 0).map((r) => r.name);
    const neverFalse = cov.rules.filter((r) => r.not_matched === 0).map((r) => r.name);
    if (unmatched.length) process.stdout.write(`rules no fixture matched: ${unmatched.join(", ")}\n`);
    if (neverFalse.length) process.stdout.write(`rules every fixture matched (never seen false): ${neverFalse.join(", ")}\n`);
    const gaps = cov.branches.filter((b) => b.true === 0 || b.false === 0);
    for (const b of gaps) process.stdout.write(`  uncovered  ${b.rule} ${b.pointer}  ${b.text}: never ${b.true === 0 && b.false === 0 ? "evaluated" : b.true === 0 ? "true" : "false"}\n`);
    process.stdout.write(`branch coverage: ${cov.percent}% (${cov.covered}/${cov.total})${threshold !== undefined ? `, threshold ${threshold}%` : ""}\n`);
  }
};

export const registerRulesCommands = (program: Command) => {
  const rules = program.command("rules").description("policy-as-code rules: lifecycle, validation, tests, simulation (docs/rules.md)");

  rules
    .command("list")
    .description("list rule versions, newest first")
    .option("--status <status>", "DRAFT | REVIEW | ACTIVE | RETIRED | REJECTED")
    .option("--name <name>", "only this rule")
    .option("--target <target>", "action_request | event")
    .option("--limit <n>", "page size", "100")
    .option("--all", "follow cursors to the end")
    .action(async (opts: { status?: string; name?: string; target?: string; limit: string; all?: boolean }, cmd: Command) => {
      const client = apiClient();
      const items: Json[] = [];
      let cursor: string | undefined;
      let next: string | null = null;
      do {
        const page = await client.request<Page<Json>>("GET", `/rules${query({ status: opts.status, name: opts.name, target: opts.target, limit: opts.limit, cursor })}`);
        items.push(...page.items);
        next = page.next_cursor;
        cursor = next ?? undefined;
      } while (opts.all && next);
      if (json(cmd)) printJson({ items, next_cursor: next });
      else {
        printTable(items, RULE_COLUMNS);
        if (next) process.stdout.write("more: --all\n");
      }
    });

  rules
    .command("show")
    .argument("<name>", "rule name")
    .argument("[version]", "one version (default: all versions)")
    .description("show a rule's versions, or one version in full")
    .action(async (name: string, version: string | undefined, _opts, cmd: Command) => {
      const client = apiClient();
      if (version !== undefined) {
        const v = await client.request<Json>("GET", `/rules/${encodeURIComponent(name)}/versions/${positiveInt("version")(version)}`);
        if (json(cmd)) printJson(v);
        else printVersion(v);
        return;
      }
      const h = await client.request<{ name: string; active_version: number | null; versions: Json[] }>("GET", `/rules/${encodeURIComponent(name)}`);
      if (json(cmd)) printJson(h);
      else {
        process.stdout.write(`${h.name}: active version ${h.active_version ?? "none"}\n`);
        printTable(h.versions, ["version", "status", "outcome", "approvals", "priority", "mode", "author", "created_at", "retire_reason"]);
      }
    });

  rules
    .command("create")
    .argument("<file>", "rule document (JSON; - for stdin)")
    .description("create a DRAFT: version 1 of a new rule, or the next version of an existing one")
    .action(async (file: string, _opts, cmd: Command) => {
      const created = await apiClient().request<Json>("POST", "/rules", readJson(file));
      if (json(cmd)) printJson(created);
      else process.stdout.write(`created ${String(created.name)} version ${String(created.version)} (DRAFT)\n`);
    });

  rules
    .command("edit")
    .argument("<name>", "rule name")
    .argument("<version>", "the DRAFT version")
    .argument("<file>", "JSON object of the fields to change (or a whole document)")
    .description("edit a DRAFT")
    .action(async (name: string, version: string, file: string, _opts, cmd: Command) => {
      const edited = await apiClient().request<Json>("PATCH", `/rules/${encodeURIComponent(name)}/versions/${positiveInt("version")(version)}`, readJson(file));
      if (json(cmd)) printJson(edited);
      else process.stdout.write(`edited ${name} version ${String(edited.version)}\n`);
    });

  const transition = (verb: string, description: string, path: string) =>
    rules
      .command(verb)
      .argument("<name>", "rule name")
      .argument("<version>", "version")
      .description(description)
      .action(async (name: string, version: string, _opts, cmd: Command) => {
        const v = await apiClient().request<Json>("POST", `/rules/${encodeURIComponent(name)}/versions/${positiveInt("version")(version)}/${path}`);
        if (json(cmd)) printJson(v);
        else process.stdout.write(`${name} version ${String(v.version)} is now ${String(v.status)}\n`);
      });
  transition("submit", "submit a DRAFT for review (it becomes immutable)", "submit");
  transition("activate", "activate an approved version (the active one is retired in the same transaction)", "activate");

  rules
    .command("review")
    .argument("<name>", "rule name")
    .argument("<version>", "version in REVIEW")
    .option("--approve", "approve it")
    .option("--reject", "reject it")
    .requiredOption("--comment <text>", "why (recorded in the audit log)")
    .description("approve or reject a version someone else wrote")
    .action(async (name: string, version: string, opts: { approve?: boolean; reject?: boolean; comment: string }, cmd: Command) => {
      if (Boolean(opts.approve) === Boolean(opts.reject)) throw new CliError("give exactly one of --approve or --reject", 2);
      const v = await apiClient().request<Json>("POST", `/rules/${encodeURIComponent(name)}/versions/${positiveInt("version")(version)}/review`, {
        decision: opts.approve ? "approve" : "reject",
        comment: opts.comment,
      });
      if (json(cmd)) printJson(v);
      else process.stdout.write(`${name} version ${String(v.version)}: ${opts.approve ? "approved" : "rejected"} (${String(v.status)})\n`);
    });

  rules
    .command("retire")
    .argument("<name>", "rule name")
    .argument("<version>", "version")
    .option("--reason <text>", "why")
    .description("retire a version (an ACTIVE one stops being enforced at once)")
    .action(async (name: string, version: string, opts: { reason?: string }, cmd: Command) => {
      const v = await apiClient().request<Json>("POST", `/rules/${encodeURIComponent(name)}/versions/${positiveInt("version")(version)}/retire`, opts.reason ? { reason: opts.reason } : {});
      if (json(cmd)) printJson(v);
      else process.stdout.write(`${name} version ${String(v.version)} is now RETIRED\n`);
    });

  rules
    .command("diff")
    .argument("<name>", "rule name")
    .argument("<from>", "version")
    .argument("<to>", "version")
    .description("what changed between two versions")
    .action(async (name: string, from: string, to: string, _opts, cmd: Command) => {
      const d = await apiClient().request<{ changes: Json[] }>("GET", `/rules/${encodeURIComponent(name)}/diff${query({ from: positiveInt("from")(from), to: positiveInt("to")(to) })}`);
      if (json(cmd)) {
        printJson(d);
        return;
      }
      if (d.changes.length === 0) process.stdout.write("no differences\n");
      for (const c of d.changes) {
        const sign = c.kind === "added" ? "+" : c.kind === "removed" ? "-" : "~";
        const detail = c.kind === "added" ? JSON.stringify(c.to) : c.kind === "removed" ? JSON.stringify(c.from) : `${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`;
        process.stdout.write(`${sign} ${String(c.pointer)}: ${detail}\n`);
      }
    });

  rules
    .command("validate")
    .argument("[files...]", "rule documents (JSON, one or an array per file); checked locally")
    .option("--all", "ask the server to re-validate every stored DRAFT, REVIEW and ACTIVE version")
    .description("validate rules: one line per problem with its JSON pointer (the seed's validate_expressions)")
    .action(async (files: string[], opts: { all?: boolean }, cmd: Command) => {
      if (!opts.all && files.length === 0) throw new CliError("give rule files, or --all for the rules stored on the server", 2);
      type Result = { where: string; valid: boolean; errors: { pointer: string; message: string }[] };
      const results: Result[] = [];
      if (opts.all) {
        const res = await apiClient().request<{ results: { name: string; version: number; valid: boolean; errors: { pointer: string; message: string }[] }[] }>("POST", "/rules/validate", { all: true });
        for (const r of res.results) results.push({ where: `${r.name}@${r.version}`, valid: r.valid, errors: r.errors });
      }
      const { validateRuleDocument } = await language();
      for (const { file, index, doc } of readRuleFiles(files)) {
        const errors = validateRuleDocument(doc);
        const name = typeof (doc as Json)?.name === "string" ? ` (${String((doc as Json).name)})` : "";
        results.push({ where: `${file}${Array.isArray(readJson(file)) ? `[${index}]` : ""}${name}`, valid: errors.length === 0, errors });
      }
      const invalid = results.filter((r) => !r.valid);
      if (json(cmd)) printJson({ valid: invalid.length === 0, results });
      else {
        for (const r of invalid) for (const e of r.errors) process.stdout.write(`${r.where}: ${e.pointer || "(root)"}: ${e.message}\n`);
        process.stdout.write(`${results.length - invalid.length}/${results.length} rules valid\n`);
      }
      if (invalid.length) process.exitCode = 1;
    });

  rules
    .command("test")
    .argument("[dir]", "directory of fixture files {name, input, expect: {decision, matched}}")
    .option("--with <file>", "draft rule document(s) replacing (by name) or joining the set; repeatable", collect)
    .option("--without <name>", "leave a rule out; repeatable", collect)
    .option("--coverage", "report rules and branches no fixture exercised")
    .option("--threshold <percent>", "fail when branch coverage is below this", percent)
    .option("--offline", "run locally against the shipped default rules (plus --with) instead of the server's active set")
    .option("--defaults", "use the shipped default fixture suite as the directory")
    .description("run rule-test fixtures against the active set (on the server) or, --offline, against the shipped defaults")
    .action(async (dir: string | undefined, opts: { with?: string[]; without?: string[]; coverage?: boolean; threshold?: number; offline?: boolean; defaults?: boolean }, cmd: Command) => {
      const fixtureDir = dir ?? (opts.defaults ? DEFAULT_FIXTURE_DIR : undefined);
      if (!fixtureDir) throw new CliError("give a fixture directory (or --defaults for the shipped suite)", 2);
      const { FixtureFileError, loadFixtureDir, runRuleTests, validateRuleDocument, withDefaults, DEFAULT_RULES } = await language();
      let fixtures;
      try {
        fixtures = loadFixtureDir(fixtureDir);
      } catch (error) {
        if (error instanceof FixtureFileError) throw new CliError(error.message, 2);
        if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new CliError(`${fixtureDir}: no such directory`, 2);
        throw error;
      }
      if (fixtures.length === 0) throw new CliError(`${fixtureDir}: no *.json fixture files`, 2);
      const drafts = readRuleFiles(opts.with ?? []);
      const coverage = Boolean(opts.coverage || opts.threshold !== undefined);
      let report: RuleTestReport;
      if (opts.offline) {
        const byName = new Map(DEFAULT_RULES.map((d) => [d.name, { body: withDefaults(d), version: 1 as number | null }]));
        for (const { file, doc } of drafts) {
          const errors = validateRuleDocument(doc);
          if (errors.length) throw new CliError(`${file}: ${errors.map((e) => `${e.pointer || "(root)"}: ${e.message}`).join("; ")}`, 1);
          byName.set((doc as RuleDocument).name, { body: withDefaults(doc as RuleDocument), version: null });
        }
        for (const name of opts.without ?? []) byName.delete(name);
        report = runRuleTests([...byName.values()], fixtures, { coverage });
      } else {
        report = await apiClient().request<RuleTestReport>("POST", "/rules/test", { fixtures, with: drafts.map((d) => d.doc), without: opts.without ?? [], coverage });
      }
      const belowThreshold = opts.threshold !== undefined && (report.coverage?.percent ?? 0) < opts.threshold;
      if (json(cmd)) printJson({ ...report, threshold: opts.threshold ?? null, ok: report.failures.length === 0 && !belowThreshold });
      else printTestReport(report, opts.threshold);
      if (report.failures.length || belowThreshold) process.exitCode = 1;
    });

  rules
    .command("evaluate")
    .argument("<input>", "decision input (JSON; - for stdin)")
    .option("--target <target>", "action_request | event", "action_request")
    .option("--with <file>", "draft rule document(s) to evaluate with; repeatable", collect)
    .description("explain the decision the server's rules make for an input (nothing is recorded)")
    .action(async (inputFile: string, opts: { target: string; with?: string[] }, cmd: Command) => {
      const body: Json = { target: opts.target, input: readJson(inputFile) };
      if (opts.with?.length) body.with = readRuleFiles(opts.with).map((d) => d.doc);
      const d = await apiClient().request<Json>("POST", "/rules/evaluate", body);
      if (json(cmd)) printJson(d);
      else printDecision(d);
    });

  rules
    .command("simulate")
    .option("--with <file>", "draft rule document(s) replacing (by name) or joining the active set; repeatable", collect)
    .option("--without <name>", "leave a rule out; repeatable", collect)
    .requiredOption("--since <when>", "how far back: a duration (7d, 24h, 30m) or an ISO 8601 time")
    .option("--until <when>", "ISO 8601 time (default now)")
    .option("--target <target>", "only decisions for this target")
    .option("--examples <n>", "examples per flip", "3")
    .description("replay recorded decisions against the candidate set: how many flip, and which way")
    .action(async (opts: { with?: string[]; without?: string[]; since: string; until?: string; target?: string; examples: string }, cmd: Command) => {
      const body: Json = { with: readRuleFiles(opts.with ?? []).map((d) => d.doc), without: opts.without ?? [], since: opts.since, examples: Number(opts.examples) };
      if (opts.until) body.until = opts.until;
      if (opts.target) body.target = opts.target;
      const sim = await apiClient().request<Json & { flips: Json[]; approvals_changed: { count: number; examples: Json[] } }>("POST", "/rules/simulate", body);
      if (json(cmd)) {
        printJson(sim);
        return;
      }
      process.stdout.write(`${String(sim.decisions)} decisions from ${String(sim.since)} to ${String(sim.until)}: ${String(sim.changed)} would change, ${String(sim.unchanged)} unchanged${sim.truncated ? " (cut at the configured maximum)" : ""}\n`);
      for (const f of sim.flips) {
        process.stdout.write(`  ${String(f.from)} -> ${String(f.to)}: ${String(f.count)}\n`);
        for (const e of f.examples as Json[])
          process.stdout.write(`      ${String(e.decided_at)} ${e.subject ? `${String((e.subject as Json).type)} ${String((e.subject as Json).id)} ` : ""}decision ${String(e.decision_id)}: now decided by ${String(e.deciding_rule_after ?? "the default")}\n`);
      }
      if (sim.approvals_changed.count) process.stdout.write(`  approvals required changed: ${sim.approvals_changed.count}\n`);
    });
};
