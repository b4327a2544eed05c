// `portcullis sensor ...` as an admin runs it: the real CLI process against a listening server.
// The key is printed by add and rotate-key only; the sensor it names can post events with it, and
// deactivate makes the server refuse it. The CLI speaks HTTP only, so one database kind is enough.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyForRole, createTestApp, type TestApp } from "./helpers/harness.ts";
import { rememberSecret } from "./helpers/secret-scan.ts";

const ROOT = join(import.meta.dirname, "..");
const execFileP = promisify(execFile);

describe("portcullis sensor (CLI)", () => {
  let t: TestApp;
  let url: string;
  let viewer: string;
  beforeAll(async () => {
    t = await createTestApp("pglite");
    viewer = (await createKeyForRole(t.db, "viewer")).token;
    url = await t.app.listen({ port: 0, host: "127.0.0.1" });
  });
  afterAll(async () => t?.close());

  const cli = (args: string[], token: string = t.adminToken) =>
    execFileP(process.execPath, [join(ROOT, "bin/portcullis.mjs"), ...args], { cwd: ROOT, env: { ...process.env, PORTCULLIS_URL: url, PORTCULLIS_TOKEN: token } }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  const ingest = (key: string) =>
    t.app.inject({ method: "POST", url: "/security/honeypot/events", headers: { "x-honeypot-key": key, "content-type": "application/json" }, payload: { source_ip: "192.0.2.33", event_type: "scan" } });

  it("adds, lists, shows, rotates and deactivates a sensor; keys are printed once", async () => {
    const added = await cli(["sensor", "add", "cli-trap", "--type", "cowrie", "--location", "lab", "--metadata", '{"rack":2}']);
    expect(added.code, added.stderr).toBe(0);
    const key = /(phk_[A-Za-z0-9_-]{43})/.exec(added.stdout)?.[1];
    expect(key).toBeDefined();
    rememberSecret(key!);
    expect(added.stdout).toContain("shown once");
    expect(added.stdout).toContain("/services/collector/event");
    expect((await ingest(key!)).statusCode).toBe(201);

    const listed = await cli(["sensor", "list", "--json"], viewer);
    expect(listed.code, listed.stderr).toBe(0);
    const sensor = JSON.parse(listed.stdout).items.find((s: { name: string }) => s.name === "cli-trap");
    expect(sensor).toMatchObject({ honeypot_type: "cowrie", location: "lab", metadata: { rack: 2 }, active: true });
    expect(listed.stdout).not.toContain(key);
    const table = await cli(["sensor", "list"], viewer);
    expect(table.stdout).toContain("cli-trap");
    expect(table.stdout).toContain(`${key!.slice(0, 12)} active`);
    const shown = await cli(["sensor", "show", sensor.id], viewer);
    expect(shown.code).toBe(0);
    expect(shown.stdout).not.toContain(key);

    const rotated = await cli(["sensor", "rotate-key", sensor.id, "--grace", "0"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const newKey = /(phk_[A-Za-z0-9_-]{43})/.exec(rotated.stdout)?.[1];
    rememberSecret(newKey!);
    expect(newKey).not.toBe(key);
    expect(rotated.stdout).toContain(`${key!.slice(0, 12)} expired`);
    expect((await ingest(key!)).json().code).toBe("SENSOR_KEY_EXPIRED");
    expect((await ingest(newKey!)).statusCode).toBe(201);

    const denied = await cli(["sensor", "deactivate", sensor.id], viewer);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("FORBIDDEN");
    const deactivated = await cli(["sensor", "deactivate", sensor.id, "--reason", "lab closed"]);
    expect(deactivated.code, deactivated.stderr).toBe(0);
    expect(deactivated.stdout).toContain("deactivated sensor cli-trap");
    expect((await ingest(newKey!)).json().code).toBe("SENSOR_DEACTIVATED");
    const again = await cli(["sensor", "deactivate", sensor.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("SENSOR_NOT_ACTIVE");
    // A dozen CLI processes each compile through tsx: generous on a busy two-core machine.
  }, 300_000);
});
