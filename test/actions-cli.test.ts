// `portcullis action ...` as a user runs it: the real CLI process against a listening server, and
// `action verify` offline from a saved request and a pinned key (a tampered copy fails with exit 1).
// The CLI speaks HTTP only, so one database kind is enough here (the workflow suites cover both).
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, type TestApp } from "./helpers/harness.ts";
import { installRules } from "./helpers/action-rules.ts";

const ROOT = join(import.meta.dirname, "..");
const execFileP = promisify(execFile);

describe("portcullis action (CLI)", () => {
  let t: TestApp;
  let url: string;
  let analyst: string, approver: string, executor: string;
  const work = mkdtempSync(join(tmpdir(), "portcullis-actions-"));
  beforeAll(async () => {
    t = await createTestApp("pglite");
    analyst = (await createKeyForRole(t.db, "analyst")).token;
    approver = (await createKeyForRole(t.db, "approver")).token;
    executor = (await createKeyForRole(t.db, "executor")).token;
    await installRules(t, analyst, approver);
    url = await t.app.listen({ port: 0, host: "127.0.0.1" });
  });
  afterAll(async () => t?.close());

  const cli = (args: string[], token?: string) =>
    execFileP(process.execPath, [join(ROOT, "bin/portcullis.mjs"), ...args], { cwd: ROOT, env: { ...process.env, PORTCULLIS_URL: url, ...(token ? { PORTCULLIS_TOKEN: token } : {}) } }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it("requests, approves, executes and verifies; a tampered saved copy fails verification", async () => {
    const requested = await cli(["action", "request", "block_entity", "--payload", '{"entity_type":"ip","value":"5.188.86.99"}', "--reason", "scanner", "--json"], analyst);
    expect(requested.code, requested.stderr).toBe(0);
    const id = JSON.parse(requested.stdout).id as string;
    const own = await cli(["action", "approve", id, "--note", "mine"], analyst);
    expect(own.code).toBe(1);
    expect(own.stderr).toContain("FORBIDDEN");
    const human = await cli(["action", "show", id], approver);
    expect(human.stdout).toContain("REQUIRE_APPROVAL (1 approval) by rule test-actions-need-one-approver v1");
    expect((await cli(["action", "approve", id, "--note", "seen in logs"], approver)).code).toBe(0);
    const executed = await cli(["action", "execute", id, "--json"], executor);
    expect(executed.code, executed.stderr).toBe(0);
    expect(JSON.parse(executed.stdout).status).toBe("executed");
    const listed = await cli(["action", "list", "--status", "executed"], analyst);
    expect(listed.stdout).toContain(id);

    const online = await cli(["action", "verify", id], analyst);
    expect(online.code, online.stderr).toBe(0);
    expect(online.stdout).toContain("all 1 signature(s) verified");

    // Offline: the saved request and the key an auditor pinned, no server.
    const saved = join(work, "request.json");
    writeFileSync(saved, (await cli(["action", "show", id, "--json"], analyst)).stdout);
    const vkey = (await t.app.inject({ method: "GET", url: "/audit/public-key", headers: t.auth() })).body.trim();
    const offline = await cli(["action", "verify", id, "--file", saved, "--key", vkey, "--json"]);
    expect(offline.code, offline.stderr).toBe(0);
    expect(JSON.parse(offline.stdout)).toMatchObject({ ok: true, verdicts: [{ verdict: "approve", valid: true }] });
    const doc = JSON.parse(readFileSync(saved, "utf8"));
    doc.approvals[0].verdict = "reject";
    const tampered = join(work, "tampered.json");
    writeFileSync(tampered, JSON.stringify(doc));
    const bad = await cli(["action", "verify", id, "--file", tampered, "--key", vkey]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("VERIFICATION FAILED");
    expect((await cli(["action", "verify", id, "--file", saved, "--key", "not-a-key"])).code).toBe(4);
    // A dozen CLI processes each compile through tsx: generous on a busy two-core machine.
  }, 300_000);
});
