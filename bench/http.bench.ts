// HTTP enforcement check throughput: our /security/policy/check with an authorised key, beside a
// bare node:http server answering a constant, both as separate processes measured in the same run
// with the same load generator (autocannon, 32 connections).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import autocannon from "autocannon";
import { autocannonRow, type BenchRow } from "./table.ts";

const ROOT = join(import.meta.dirname, "..");
const TOKEN = "pc_bench-admin-token-0123456789abcdefghijklmn";
const DURATION_S = Number(process.env.BENCH_HTTP_SECONDS ?? 10);
const CONNECTIONS = 32;

const BARE_SERVER = `
const http = require("node:http");
const body = JSON.stringify({ blocked: false, matches: [] });
http.createServer((req, res) => { res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }); res.end(body); })
  .listen(Number(process.env.PORT), "127.0.0.1", () => process.stdout.write("ready\\n"));
`;

const waitFor = (child: ChildProcess, pattern: RegExp) =>
  new Promise<void>((resolve, reject) => {
    let out = "";
    const onData = (d: Buffer) => {
      out += String(d);
      if (pattern.test(out)) resolve();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (d) => (out += String(d)));
    child.on("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
  });

const load = (url: string, headers: Record<string, string> = {}, duration = DURATION_S) =>
  new Promise<autocannon.Result>((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration, headers }, (err, result) => (err ? reject(err) : resolve(result)));
  });
const WARMUP_S = 3;

const row = autocannonRow;

export async function runHttpBench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const barePort = 18_091;
  const ourPort = 18_092;
  const bare = spawn(process.execPath, ["-e", BARE_SERVER], { env: { ...process.env, PORT: String(barePort) }, stdio: ["ignore", "pipe", "pipe"] });
  const dataDir = mkdtempSync(join(tmpdir(), "portcullis-bench-"));
  const ours = spawn(process.execPath, [join(ROOT, "bin/portcullis.mjs"), "serve"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORTCULLIS_PORT: String(ourPort),
      PORTCULLIS_DATA_DIR: dataDir,
      PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN: TOKEN,
      PORTCULLIS_LOG__LEVEL: "warn",
      // Limits stay on (their cost is part of every request) but above what one load generator sends.
      PORTCULLIS_RATE_LIMIT__MANAGEMENT_PER_MINUTE: "100000000",
      PORTCULLIS_RATE_LIMIT__ENFORCEMENT_PER_MINUTE: "100000000",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    await Promise.all([waitFor(bare, /ready/), waitFor(ours, /listening on/)]);
    const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    // Some blocks so the check does real work: 1,000 single IPs and 100 ranges in public space.
    for (let i = 0; i < 1100; i++) {
      const value = i < 1000 ? `45.${(i >> 8) & 255}.${i & 255}.7` : `91.${i - 1000}.0.0/16`;
      await fetch(`http://127.0.0.1:${ourPort}/security/policy/blocks`, {
        method: "POST",
        headers,
        body: JSON.stringify({ entity_type: i < 1000 ? "ip" : "cidr", value, reason: "bench" }),
      });
    }
    // Each target is warmed up (JIT) before it is measured.
    await load(`http://127.0.0.1:${barePort}/`, {}, WARMUP_S);
    const bareResult = await load(`http://127.0.0.1:${barePort}/`);
    const reference = { name: "bare node:http", rps: bareResult.requests.average };
    rows.push(row(`bare node:http constant (${CONNECTIONS} conns)`, bareResult));
    await load(`http://127.0.0.1:${ourPort}/security/policy/check?ip=45.0.3.7`, { authorization: headers.authorization }, WARMUP_S);
    const hit = await load(`http://127.0.0.1:${ourPort}/security/policy/check?ip=45.0.3.7`, { authorization: headers.authorization });
    if (hit.non2xx) throw new Error(`check answered ${hit.non2xx} non-2xx responses`);
    rows.push(row("GET /security/policy/check (blocked ip)", hit, reference));
    const miss = await load(`http://127.0.0.1:${ourPort}/security/policy/check?ip=8.8.4.4`, { authorization: headers.authorization });
    rows.push(row("GET /security/policy/check (not blocked)", miss, reference));
    const health = await load(`http://127.0.0.1:${ourPort}/healthz`);
    rows.push(row("GET /healthz (no auth)", health, reference));
    // Authentication's cost on a no-op route: whoami with an API key and with a session's access
    // token (EdDSA signature verified on every request), against the unauthenticated health probe.
    const unauthenticated = { name: "GET /healthz", rps: health.requests.average };
    const viaKey = await load(`http://127.0.0.1:${ourPort}/auth/whoami`, { authorization: headers.authorization });
    if (viaKey.non2xx) throw new Error(`whoami answered ${viaKey.non2xx} non-2xx responses`);
    rows.push(row("GET /auth/whoami (API key)", viaKey, unauthenticated));
    const password = "bench-operator-passphrase-91c2";
    await fetch(`http://127.0.0.1:${ourPort}/users`, { method: "POST", headers, body: JSON.stringify({ username: "bench-viewer", role: "viewer", password }) });
    const session = (await (
      await fetch(`http://127.0.0.1:${ourPort}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "bench-viewer", password }) })
    ).json()) as { access_token: string };
    const viaJwt = await load(`http://127.0.0.1:${ourPort}/auth/whoami`, { authorization: `Bearer ${session.access_token}` });
    if (viaJwt.non2xx) throw new Error(`whoami (session) answered ${viaJwt.non2xx} non-2xx responses`);
    rows.push(row("GET /auth/whoami (access token)", viaJwt, unauthenticated));
  } finally {
    bare.kill("SIGTERM");
    ours.kill("SIGTERM");
    await new Promise((r) => ours.once("exit", r));
    rmSync(dataDir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const { printTable } = await import("./table.ts");
  printTable(await runHttpBench());
}
