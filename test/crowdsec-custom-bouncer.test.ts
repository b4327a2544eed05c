// The real peer: Debian's crowdsec-custom-bouncer 0.0.15 (unpacked by .ci/run into the peer cache)
// against a real server process, through the second listener (crowdsec.listen), changed only in
// api_url and api_key. Its bin_path is a script that appends its arguments to a file: blocking an
// IP and a CIDR must produce `add` calls, deactivating one its `del`, an expiring block a `del` once
// it expires. Under CI=true a missing binary fails the suite instead of skipping it.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startServer, stopServer, type ServerProc } from "./helpers/cli.ts";
import { PEER_CACHE, peerBinary } from "./helpers/crowdsec.ts";
import { rememberSecret } from "./helpers/secret-scan.ts";

const binary = peerBinary("crowdsec-custom-bouncer", "crowdsec-custom-bouncer");
if (!binary && process.env.CI === "true")
  throw new Error(`CI=true but crowdsec-custom-bouncer is not unpacked under ${PEER_CACHE} (.ci/run fetches it with apt-get download)`);
if (!binary)
  console.warn(
    `\n!!! SKIPPING the real crowdsec-custom-bouncer test: ${PEER_CACHE}/crowdsec-custom-bouncer/usr/bin/crowdsec-custom-bouncer is missing.\n` +
      "!!! Fetch it: apt-get download crowdsec-custom-bouncer && dpkg -x crowdsec-custom-bouncer_*.deb $PEER_CACHE/crowdsec-custom-bouncer (or run .ci/run)\n",
  );

const ADMIN = "pc_custom-bouncer-test-admin-token-0123456789";

(binary ? describe : describe.skip)("crowdsec-custom-bouncer 0.0.15 against Portcullis", () => {
  let dir: string;
  let server: ServerProc;
  let bouncer: ChildProcess;
  let bouncerOut = "";
  let calls: string;
  let lapiUrl: string;

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  const lines = () => (existsSync(calls) ? readFileSync(calls, "utf8").split("\n").filter(Boolean) : []);
  const waitFor = async (what: string, predicate: (l: string[]) => boolean, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (predicate(lines())) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out waiting for ${what}; calls so far:\n${lines().join("\n")}\nbouncer output:\n${bouncerOut}`);
  };
  const called = (verb: string, value: string) => (l: string[]) => l.some((line) => line.startsWith(`${verb} ${value} `));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "pc-custom-bouncer-"));
    calls = join(dir, "calls.log");
    const lapiPort = await freePort();
    lapiUrl = `http://127.0.0.1:${lapiPort}/`;
    rememberSecret(ADMIN);
    server = await startServer({
      PORTCULLIS_DATA_DIR: join(dir, "data"),
      PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN: ADMIN,
      PORTCULLIS_CROWDSEC__LISTEN: `127.0.0.1:${lapiPort}`,
    });
    expect(server.output()).toContain(`CrowdSec Local API also on http://127.0.0.1:${lapiPort}/v1`);
    const created = await api("POST", "/crowdsec/bouncers", { name: "custom-test" });
    const key = created.key as string;
    rememberSecret(key);
    const script = join(dir, "record.sh");
    writeFileSync(script, `#!/bin/sh\necho "$@" >> ${calls}\n`);
    chmodSync(script, 0o755);
    // The package's own config (/etc/crowdsec/bouncers/crowdsec-custom-bouncer.yaml) with api_url,
    // api_key and bin_path set, polling every second, in the foreground, logging to stdout.
    const config = join(dir, "custom.yaml");
    writeFileSync(
      config,
      [
        `bin_path: ${script}`,
        "feed_via_stdin: false",
        "total_retries: 0",
        "scenarios_containing: []",
        "scenarios_not_containing: []",
        "origins: []",
        `piddir: ${dir}/`,
        "update_frequency: 1s",
        "cache_retention_duration: 10s",
        "daemonize: false",
        "log_mode: stdout",
        `log_dir: ${dir}/`,
        "log_level: info",
        `api_url: ${lapiUrl}`,
        `api_key: ${key}`,
        "prometheus:",
        "  enabled: false",
        "  listen_addr: 127.0.0.1",
        "  listen_port: 60602",
        "",
      ].join("\n"),
    );
    bouncer = spawn(binary!, ["-c", config], { stdio: ["ignore", "pipe", "pipe"] });
    bouncer.stdout!.on("data", (d) => (bouncerOut += String(d)));
    bouncer.stderr!.on("data", (d) => (bouncerOut += String(d)));
  }, 120_000);

  afterAll(async () => {
    if (bouncer && bouncer.exitCode === null) bouncer.kill("SIGTERM");
    if (server) await stopServer(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("adds an IP and a CIDR block, deletes a deactivated one, and deletes an expiring one when it expires", async () => {
    const ip = await api("POST", "/security/policy/blocks", { entity_type: "ip", value: "45.33.50.1", reason: "ssh brute force" });
    await api("POST", "/security/policy/blocks", { entity_type: "cidr", value: "45.33.51.0/24", reason: "scanner range" });
    await waitFor("add of the IP and the CIDR", (l) => called("add", "45.33.50.1")(l) && called("add", "45.33.51.0/24")(l));
    const add = lines().find((l) => l.startsWith("add 45.33.50.1 "))!;
    // add <value> <duration seconds> <reason> <decision json>
    expect(add).toMatch(/^add 45\.33\.50\.1 \d+ ssh brute force \{/);

    await api("POST", `/security/policy/blocks/${ip.id as string}/deactivate`, { reason: "false positive" });
    await waitFor("del of the deactivated IP", called("del", "45.33.50.1"));
    expect(lines().some((l) => l.startsWith("del 45.33.51.0/24 "))).toBe(false);

    await api("POST", "/security/policy/blocks", { entity_type: "ip", value: "45.33.52.1", reason: "short", expires_at: new Date(Date.now() + 4_000).toISOString() });
    await waitFor("add of the expiring IP", called("add", "45.33.52.1"));
    await waitFor("del of the expiring IP after its expiry", called("del", "45.33.52.1"), 20_000);

    // The second listener serves the Local API only.
    expect((await fetch(`${lapiUrl}healthz`)).status).toBe(404);
    expect((await fetch(`${lapiUrl}crowdsec/bouncers`, { headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(404);
    const bouncers = (await (await fetch(`${server.url}/crowdsec/bouncers`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as Record<string, unknown>[];
    expect(bouncers[0]).toMatchObject({ name: "custom-test", agent_name: "crowdsec-custom-bouncer", last_address: "127.0.0.1" });
  }, 90_000);
});
