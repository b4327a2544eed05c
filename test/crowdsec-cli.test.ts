// `portcullis bouncer add|list|delete` and `portcullis watcher list|validate|delete` as a user runs
// them (the real binary) against a listening server on a real database: the key printed once and
// working, the table, JSON output, exit codes for unknown names. Runs once, on PostgreSQL when the
// run has it: the API behind each command is covered on every database kind by the other suites.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { runCli } from "./helpers/cli.ts";
import { rememberSecret } from "./helpers/secret-scan.ts";

describe.each(DB_KINDS.slice(-1))("CrowdSec CLI on %s", (kind) => {
  let t: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    t = await createTestApp(kind, { config: { "auth.argon2MemoryKiB": 8192 } });
    await t.app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = t.app.server.address() as { port: number };
    env = { PORTCULLIS_URL: `http://127.0.0.1:${port}`, PORTCULLIS_TOKEN: t.adminToken };
  });
  afterAll(async () => t?.close());

  it("adds a bouncer and prints its key once, lists and deletes it", async () => {
    const add = await runCli(["bouncer", "add", "edge-nginx"], env);
    expect(add.code, add.stderr).toBe(0);
    const key = /^\s+(pcb_[0-9a-f]{48})$/m.exec(add.stdout)?.[1];
    expect(key, add.stdout).toBeDefined();
    rememberSecret(key);
    const pull = await t.app.inject({ method: "GET", url: "/v1/decisions?ip=45.33.70.1", headers: { "x-api-key": key!, "user-agent": "crowdsec-nginx-bouncer/v1.0.8" } });
    expect(pull.statusCode).toBe(200);
    await t.app.services.crowdsec.bouncers.flushPulls();
    const list = await runCli(["bouncer", "list"], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+AGENT_NAME\s+AGENT_VERSION\s+LAST_PULL_AT\s+LAST_ADDRESS/m);
    expect(list.stdout).toMatch(/^edge-nginx\s+crowdsec-nginx-bouncer\s+v1\.0\.8\s+\S+\s+127\.0\.0\.1/m);
    expect(list.stdout).not.toContain(key);
    const del = await runCli(["--json", "bouncer", "delete", "edge-nginx"], env);
    expect(del.code).toBe(0);
    expect(JSON.parse(del.stdout)).toMatchObject({ name: "edge-nginx" });
    expect((await t.app.inject({ method: "GET", url: "/v1/decisions?ip=45.33.70.1", headers: { "x-api-key": key! } })).statusCode).toBe(403);
    const again = await runCli(["bouncer", "delete", "edge-nginx"], env);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("no bouncer");
  }, 60_000);

  it("lists, validates and deletes watchers", async () => {
    const password = "cli-agent-password-8e1f";
    rememberSecret(password);
    expect((await t.app.inject({ method: "POST", url: "/v1/watchers", payload: { machine_id: "cli-agent", password } })).statusCode).toBe(201);
    const list = await runCli(["--json", "watcher", "list"], env);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ machine_id: "cli-agent", validated: false })]);
    const validated = await runCli(["watcher", "validate", "cli-agent"], env);
    expect(validated.code, validated.stderr).toBe(0);
    expect(validated.stdout).toMatch(/^validated\s+true$/m);
    const login = await t.app.inject({ method: "POST", url: "/v1/watchers/login", payload: { machine_id: "cli-agent", password } });
    expect(login.statusCode).toBe(200);
    const del = await runCli(["watcher", "delete", "cli-agent"], env);
    expect(del.code).toBe(0);
    expect(del.stdout).toContain("deleted watcher cli-agent");
  }, 60_000);
});
