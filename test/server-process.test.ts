// End to end: the real server process started with `npm start` on a temp data dir, driven over
// HTTP and through the CLI, stopped with SIGTERM and started again with its data intact.
import { spawn, type ChildProcess, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const execFileP = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });

type Proc = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

const start = (env: Record<string, string>): Proc => {
  let out = "";
  const child = spawn("npm", ["start", "--silent"], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_LOG__LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
};

const waitReady = async (url: string, proc: Proc, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`server exited early:\n${proc.output()}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`server not ready in time:\n${proc.output()}`);
};

// SIGTERM to npm, which forwards it to the server; npm then exits with the server's exit code.
const stop = async (proc: Proc) => {
  process.kill(proc.child.pid!, "SIGTERM");
  return proc.exited;
};

const cli = (args: string[], env: Record<string, string>) =>
  execFileP(process.execPath, [join(ROOT, "bin/portcullis.mjs"), ...args], { cwd: ROOT, env: { ...process.env, ...env } });

describe("the server process", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "portcullis-e2e-"));
  const running: Proc[] = [];
  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null) await stop(p).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("starts with npm start, bootstraps an admin, blocks over HTTP and the CLI, and keeps its data across a restart", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { PORTCULLIS_PORT: String(port), PORTCULLIS_DATA_DIR: dataDir };
    const first = start(env);
    running.push(first);
    await waitReady(url, first);
    const token = /^\s+(pc_[A-Za-z0-9_-]{43})$/m.exec(first.output())?.[1];
    expect(token, first.output()).toBeDefined();
    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };

    // A second process on the same data dir refuses to start.
    const second = start(env);
    running.push(second);
    expect(await second.exited).not.toBe(0);
    expect(second.output()).toMatch(/in use by process \d+/);

    const created = await fetch(`${url}/security/policy/blocks`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ entity_type: "ip", value: "5.188.86.172", reason: "e2e" }),
    });
    expect(created.status).toBe(201);
    const check: any = await (await fetch(`${url}/security/policy/check?ip=5.188.86.172`, { headers: auth })).json();
    expect(check.blocked).toBe(true);

    const cliEnv = { PORTCULLIS_URL: url, PORTCULLIS_TOKEN: token! };
    const added = JSON.parse((await cli(["block", "add", "45.95.147.200", "--reason", "from cli", "--expires", "4h", "--json"], cliEnv)).stdout);
    expect(added).toMatchObject({ entity_type: "ip", value: "45.95.147.200", active: true });
    const listed = JSON.parse((await cli(["block", "list", "--active", "true", "--json"], cliEnv)).stdout);
    expect(listed.items.map((b: { value: string }) => b.value).sort()).toEqual(["45.95.147.200", "5.188.86.172"]);
    const removed = JSON.parse((await cli(["block", "remove", added.id, "--json"], cliEnv)).stdout);
    expect(removed.active).toBe(false);
    const human = (await cli(["block", "list"], cliEnv)).stdout;
    expect(human).toContain("ENTITY_TYPE");
    const dup = await cli(["block", "add", "5.188.86.172"], cliEnv).catch((e: { code: number; stderr: string }) => e);
    expect((dup as { code: number }).code).toBe(1);
    expect((dup as { stderr: string }).stderr).toContain("BLOCK_EXISTS");
    const policy = JSON.parse((await cli(["policy", "set", "--mode", "elevated", "--json"], cliEnv)).stdout);
    expect(policy.default_mode).toBe("elevated");

    expect(await stop(first)).toBe(0);
    expect(first.output()).toContain("Portcullis stopped.");

    const again = start(env);
    running.push(again);
    await waitReady(url, again);
    expect(again.output()).not.toContain("first start");
    const still: any = await (await fetch(`${url}/security/policy/check?ip=5.188.86.172`, { headers: auth })).json();
    expect(still.blocked).toBe(true);
    const audit: any = await (await fetch(`${url}/audit/entries?limit=100`, { headers: auth })).json();
    expect(audit.items.map((e: { action: string }) => e.action)).toEqual([
      "identity.user.created",
      "identity.api_key.created",
      "blocklist.block.created",
      "blocklist.block.created",
      "blocklist.block.deactivated",
      "policy.updated",
    ]);
    expect(await stop(again)).toBe(0);
  }, 180_000);
});
