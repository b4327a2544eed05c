// The fail2ban action documented in docs/crowdsec.md, taken from the doc itself and run the way
// fail2ban runs it (tags substituted, %% unescaped, executed by a shell with curl) against a
// listening server: the ban arrives as a watcher alert, an event and a block proposal.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, DB_KINDS, type TestApp } from "./helpers/harness.ts";
import { rememberSecret } from "./helpers/secret-scan.ts";

const execFileP = promisify(execFile);
const DOC = readFileSync(join(import.meta.dirname, "..", "docs", "crowdsec.md"), "utf8");

/** The actionban of the documented action file, as fail2ban reads it (continuation lines joined). */
const documentedActionban = (): string => {
  const block = /# \/etc\/fail2ban\/action\.d\/portcullis-crowdsec\.conf\n([\s\S]*?)```/.exec(DOC)?.[1];
  if (!block) throw new Error("docs/crowdsec.md has no portcullis-crowdsec.conf block");
  const lines = block.split("\n");
  const start = lines.findIndex((l) => l.startsWith("actionban = "));
  const out = [lines[start]!.slice("actionban = ".length)];
  for (const line of lines.slice(start + 1)) {
    if (!/^\s/.test(line)) break;
    out.push(line);
  }
  return out.join("\n");
};

describe.each(DB_KINDS.slice(-1))("the documented fail2ban action on %s", (kind) => {
  let t: TestApp;
  let url: string;
  const password = "fail2ban-host-password-3c9d";
  beforeAll(async () => {
    t = await createTestApp(kind, { config: { "auth.argon2MemoryKiB": 8192 } });
    rememberSecret(password);
    await t.app.listen({ host: "127.0.0.1", port: 0 });
    url = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
    expect((await t.app.inject({ method: "POST", url: "/v1/watchers", payload: { machine_id: "fail2ban-web-1", password } })).statusCode).toBe(201);
    expect((await t.app.inject({ method: "POST", url: "/crowdsec/watchers/fail2ban-web-1/validate", headers: t.auth(), payload: {} })).statusCode).toBe(200);
  });
  afterAll(async () => t?.close());

  it("pushes a ban as an alert that becomes an event and a block proposal", async () => {
    const tags: Record<string, string> = { url, machine: "fail2ban-web-1", password, name: "sshd", ip: "45.33.90.9", failures: "5", bantime: "600" };
    const command = documentedActionban()
      .replace(/<(\w+)>/g, (all, tag: string) => tags[tag] ?? all)
      .replaceAll("%%", "%");
    const run = await execFileP("bash", ["-c", command]).catch((e: { stdout: string; stderr: string; code: number }) => e);
    expect((run as { code?: number }).code ?? 0, (run as { stderr: string }).stderr).toBe(0);
    expect(JSON.parse((run as { stdout: string }).stdout)).toEqual([expect.any(String)]);
    const requests = (await t.app.inject({ method: "GET", url: "/security/actions/?type=block_entity", headers: t.auth() })).json().items as { payload: Record<string, unknown>; reason: string }[];
    expect(requests).toEqual([expect.objectContaining({ payload: expect.objectContaining({ entity_type: "ip", value: "45.33.90.9" }) })]);
    expect(requests[0]!.reason).toContain("crowdsec/fail2ban-web-1: fail2ban/sshd");
    const events = (await t.app.inject({ method: "GET", url: "/security/honeypot/events?source_ip=45.33.90.9", headers: t.auth() })).json().items as { detected_threat: string }[];
    expect(events).toEqual([expect.objectContaining({ detected_threat: "fail2ban/sshd" })]);
  }, 60_000);
});
