// `portcullis rules ...` against a listening server on a real database: local validation with
// pointers and exit codes, the shipped fixture suite with coverage on the server and offline, a
// failing draft explained, the lifecycle by two people, diff, evaluate and simulate.
// Most commands run in-process (the same command definitions, stdout captured, over real HTTP); two
// run as the real `portcullis` binary to check the wiring and exit codes end to end. Process spawns
// are slow on a loaded machine, so there are few of them and the tests get generous timeouts.
// Like the server-process test this exercises a client, so it runs once, on PostgreSQL when the run
// has it: the API behaviour behind each command is covered on every database kind by rules.test.ts.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Command, CommanderError } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerRulesCommands } from "../src/cli/rules-commands.ts";
import { CliError } from "../src/cli/client.ts";
import { createKeyForRole, createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { systemActor } from "../src/domains/identity/principal.ts";

const ROOT = join(import.meta.dirname, "..");
const execFileP = promisify(execFile);

describe.each(DB_KINDS.slice(-1))("rules CLI on %s", (kind) => {
  let t: TestApp;
  let url: string;
  let analyst: { token: string };
  let approver: { token: string };
  const work = mkdtempSync(join(tmpdir(), "portcullis-rules-cli-"));
  const file = (name: string, value: unknown) => {
    const path = join(work, name);
    writeFileSync(path, JSON.stringify(value, null, 2));
    return path;
  };
  /** The real binary, as a user runs it. */
  const binary = (args: string[], token?: string) =>
    execFileP(process.execPath, [join(ROOT, "bin/portcullis.mjs"), ...args], {
      cwd: ROOT,
      env: { ...process.env, PORTCULLIS_URL: url, PORTCULLIS_TOKEN: token ?? t.adminToken },
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  /** The same commands in this process: output captured, errors mapped to exit codes as main.ts does. */
  const cli = async (args: string[], token?: string) => {
    const program = new Command("portcullis").option("--json").exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    registerRulesCommands(program);
    let stdout = "";
    let stderr = "";
    const write = process.stdout.write.bind(process.stdout);
    const env = { url: process.env.PORTCULLIS_URL, token: process.env.PORTCULLIS_TOKEN };
    process.env.PORTCULLIS_URL = url;
    process.env.PORTCULLIS_TOKEN = token ?? t.adminToken;
    process.stdout.write = ((chunk: string | Uint8Array) => {
      stdout += String(chunk);
      return true;
    }) as typeof process.stdout.write;
    process.exitCode = undefined;
    let code = 0;
    try {
      await program.parseAsync(["node", "portcullis", ...args]);
      code = Number(process.exitCode ?? 0);
    } catch (error) {
      if (error instanceof CliError) {
        code = error.exitCode;
        stderr = `error: ${error.message}\n`;
      } else if (error instanceof CommanderError) {
        code = error.exitCode;
        stderr = error.message;
      } else throw error;
    } finally {
      process.stdout.write = write;
      process.exitCode = undefined;
      if (env.url === undefined) delete process.env.PORTCULLIS_URL;
      else process.env.PORTCULLIS_URL = env.url;
      if (env.token === undefined) delete process.env.PORTCULLIS_TOKEN;
      else process.env.PORTCULLIS_TOKEN = env.token;
    }
    return { code, stdout, stderr };
  };

  beforeAll(async () => {
    t = await createTestApp(kind);
    url = await t.app.listen({ port: 0, host: "127.0.0.1" });
    analyst = await createKeyForRole(t.db, "analyst");
    approver = await createKeyForRole(t.db, "approver");
  });
  afterAll(async () => {
    await t?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const draft = {
    name: "narrow-cidr-approval",
    description: "all CIDR blocks need approval, not only broad ones",
    target: "action_request",
    when: { op: "eq", field: "action.type", value: "block_entity" },
    outcome: "REQUIRE_APPROVAL",
    approvals: 2,
  };

  it("validates files locally: one line per problem with its pointer, exit 1", async () => {
    const good = file("good.json", draft);
    const bad = file("bad.json", [draft, { ...draft, name: "typo", when: { op: "eq", field: "action.tpye", value: "block_entity" }, outcome: "DENIED" }]);
    const ok = await cli(["rules", "validate", good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("1/1 rules valid");
    const res = await binary(["rules", "validate", good, bad]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(`${bad}[1] (typo): /when/field: unknown field "action.tpye" for target action_request; did you mean "action.type"?`);
    expect(res.stdout).toContain(`${bad}[1] (typo): /outcome: must be one of`);
    expect(res.stdout).toContain("2/3 rules valid");
    const all = await cli(["rules", "validate", "--all", "--json"]);
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout).valid).toBe(true);
    expect((await cli(["rules", "validate"])).code).toBe(2);
  }, 180_000);

  it("runs the shipped fixture suite on the server with full coverage, and offline", async () => {
    const online = await cli(["rules", "test", "--defaults", "--coverage", "--threshold", "100"]);
    expect(online.code, online.stderr).toBe(0);
    expect(online.stdout).toMatch(/(\d+)\/\1 fixtures passed/);
    expect(online.stdout).toContain("branch coverage: 100%");
    const offline = await binary(["rules", "test", "--defaults", "--offline", "--json"]);
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout)).toMatchObject({ ok: true, failures: [] });
  }, 180_000);

  it("explains the fixtures a draft breaks, and fails a coverage threshold", async () => {
    const res = await cli(["rules", "test", "--defaults", "--with", file("draft.json", draft)]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain("FAIL a public CIDR overlapping no special space is not denied");
    expect(res.stdout).toContain("approvals_required is 2, expected 1");
    expect(res.stdout).toContain("narrow-cidr-approval matched but was not expected");
    const dir = mkdtempSync(join(work, "fx-"));
    writeFileSync(
      join(dir, "one.json"),
      JSON.stringify({ name: "loopback", input: { action: { type: "block_entity" }, entity: { type: "ip", ip: "127.0.0.1" } }, expect: { decision: "DENY", matched: ["never-block-special-networks"] } }),
    );
    const low = await cli(["rules", "test", dir, "--threshold", "90"]);
    expect(low.code).toBe(1);
    expect(low.stdout).toContain("1/1 fixtures passed");
    expect(low.stdout).toContain("rules no fixture matched: ");
    expect(low.stdout).toMatch(/uncovered {2}lockdown-needs-two-approvers \/when {2}/);
    writeFileSync(join(dir, "broken.json"), "{nope");
    const broken = await cli(["rules", "test", dir]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain("broken.json: not valid JSON");
  }, 180_000);

  it("takes a rule through review by someone else to activation, then diff, evaluate and simulate", async () => {
    const path = file("lifecycle.json", draft);
    expect((await cli(["rules", "create", path], analyst.token)).stdout).toContain("created narrow-cidr-approval version 1 (DRAFT)");
    expect((await cli(["rules", "edit", "narrow-cidr-approval", "1", file("patch.json", { approvals: 1 })], analyst.token)).code).toBe(0);
    expect((await cli(["rules", "submit", "narrow-cidr-approval", "1"], analyst.token)).stdout).toContain("is now REVIEW");
    // The author cannot review (an analyst has no rules:review); someone else approves.
    const selfReview = await cli(["rules", "review", "narrow-cidr-approval", "1", "--approve", "--comment", "fine"], analyst.token);
    expect(selfReview.code).toBe(1);
    expect(selfReview.stderr).toContain("FORBIDDEN");
    expect((await cli(["rules", "review", "narrow-cidr-approval", "1", "--approve", "--comment", "looks right"], approver.token)).stdout).toContain("approved (REVIEW)");
    expect((await cli(["rules", "activate", "narrow-cidr-approval", "1"], analyst.token)).stdout).toContain("is now ACTIVE");

    const input = file("input.json", { action: { type: "block_entity" }, entity: { type: "cidr", cidr: "5.188.86.0/24", cidr_prefix: 24, family: 4 } });
    const explained = await cli(["rules", "evaluate", input]);
    expect(explained.stdout).toContain("decision: REQUIRE_APPROVAL (1 approver) by narrow-cidr-approval");
    expect(explained.stdout).toContain("no match never-block-special-networks@1  /when/of/1:");

    expect((await cli(["rules", "create", file("v2.json", { ...draft, approvals: 3 })], analyst.token)).stdout).toContain("version 2");
    const diff = await cli(["rules", "diff", "narrow-cidr-approval", "1", "2"]);
    expect(diff.stdout).toContain("~ /approvals: 1 -> 3");

    await t.db.transaction((tx) =>
      t.app.services.rules.decideAndRecord(tx, systemActor("test"), "action_request", {
        action: { type: "block_entity" },
        entity: { type: "cidr", cidr: "5.188.86.0/24", cidr_prefix: 24, family: 4 },
      }),
    );
    const sim = await cli(["rules", "simulate", "--with", file("sim.json", { ...draft, outcome: "DENY", approvals: undefined }), "--since", "1h"]);
    expect(sim.code, sim.stderr).toBe(0);
    expect(sim.stdout).toContain("1 decisions from");
    expect(sim.stdout).toContain("REQUIRE_APPROVAL -> DENY: 1");
    const shown = await cli(["rules", "show", "narrow-cidr-approval", "--json"]);
    expect(JSON.parse(shown.stdout)).toMatchObject({ active_version: 1 });
  }, 300_000);
});
