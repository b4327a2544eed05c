// The CrowdSec Local API side by side with CrowdSec's own: Debian's crowdsec 1.4.6 (downloaded and
// unpacked into the peer cache, never installed) runs API-only on another port with its own
// temporary config and SQLite database; Portcullis runs as a server process on a temporary data
// dir. Both hold the same 100,000 IP decisions (cscli decisions import / the same values as blocks).
// Measured in the same run with the same tool: /v1/decisions?ip= requests per second (autocannon,
// 32 connections) and the time of a full startup stream (GET /v1/decisions/stream?startup=true).
// Targets (issue 8): lookups >= 100x CrowdSec's rate; startup stream >= 4x faster.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import autocannon from "autocannon";
import { parse, stringify } from "yaml";
import { openDatabase } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { autocannonRow, type BenchRow } from "./table.ts";

const ROOT = join(import.meta.dirname, "..");
const PEER_CACHE = process.env.PORTCULLIS_PEER_CACHE ?? join(homedir(), ".cache", "portcullis-peers");
const N = Number(process.env.BENCH_CROWDSEC_DECISIONS ?? 100_000);
const DURATION_S = Number(process.env.BENCH_HTTP_SECONDS ?? 10);
const CONNECTIONS = 32;
const STARTUP_RUNS = 5;
const TOKEN = "pc_bench-admin-token-0123456789abcdefghijklmn";
const CS_PORT = 18_180;
const OUR_PORT = 18_181;

const log = (msg: string) => process.stderr.write(`[crowdsec bench] ${msg}\n`);

/** Debian's crowdsec package unpacked (apt-get download + dpkg -x) into the peer cache. */
const ensureCrowdsec = (): string => {
  const dir = join(PEER_CACHE, "crowdsec");
  if (existsSync(join(dir, "usr", "bin", "crowdsec"))) return dir;
  log(`fetching Debian's crowdsec into ${dir}`);
  const debs = join(PEER_CACHE, "debs");
  mkdirSync(debs, { recursive: true });
  chmodSync(PEER_CACHE, 0o755);
  chmodSync(debs, 0o755);
  execFileSync("apt-get", ["download", "crowdsec"], { cwd: debs, stdio: "ignore" });
  const deb = readdirSync(debs).filter((f) => f.startsWith("crowdsec_") && f.endsWith(".deb")).sort().pop();
  if (!deb) throw new Error("apt-get download crowdsec produced no package (run apt-get update first)");
  mkdirSync(dir, { recursive: true });
  execFileSync("dpkg", ["-x", join(debs, deb), dir]);
  return dir;
};

/** The n benchmark addresses: 45.0.0.0, 45.0.0.1, ... (public space, all distinct). */
const address = (i: number) => `45.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const LOOKUP_IP = address(3 * 256 + 7);

const waitFor = (child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 120_000) =>
  new Promise<void>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${what}: not ready in ${timeoutMs} ms:\n${out.slice(-2000)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += String(d);
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited ${code}:\n${out.slice(-2000)}`));
    });
  });

/** CrowdSec's packaged config, copied: paths into `dir`, no Central API, the LAPI on CS_PORT, no prometheus. */
const crowdsecConfig = (cs: string, dir: string): string => {
  const c = parse(readFileSync(join(cs, "etc", "crowdsec", "config.yaml"), "utf8")) as Record<string, Record<string, any>>;
  mkdirSync(join(dir, "etc"), { recursive: true });
  mkdirSync(join(dir, "data"), { recursive: true });
  mkdirSync(join(dir, "hub"), { recursive: true });
  for (const f of readdirSync(join(cs, "etc", "crowdsec"))) {
    const from = join(cs, "etc", "crowdsec", f);
    if (f.endsWith(".yaml")) writeFileSync(join(dir, "etc", f), readFileSync(from));
  }
  writeFileSync(join(dir, "etc", "console.yaml"), "");
  writeFileSync(join(dir, "hub", ".index.json"), "{}");
  c.common = { ...c.common, daemonize: false, log_media: "stdout", log_dir: `${dir}/`, working_dir: dir, log_level: "warning" };
  c.config_paths = {
    ...c.config_paths,
    config_dir: `${dir}/etc/`,
    data_dir: `${dir}/data/`,
    simulation_path: `${dir}/etc/simulation.yaml`,
    hub_dir: `${dir}/hub/`,
    index_path: `${dir}/hub/.index.json`,
    notification_dir: `${dir}/etc/notifications/`,
    plugin_dir: `${cs}/usr/lib/crowdsec/plugins/`,
  };
  c.crowdsec_service!.acquisition_path = `${dir}/etc/acquis.yaml`;
  delete c.crowdsec_service!.acquisition_dir;
  c.db_config!.db_path = `${dir}/data/crowdsec.db`;
  c.db_config!.log_level = "warning";
  c.api!.client.credentials_path = `${dir}/etc/local_api_credentials.yaml`;
  delete c.api!.server.online_client;
  c.api!.server.listen_uri = `127.0.0.1:${CS_PORT}`;
  c.api!.server.log_level = "warning";
  c.api!.server.profiles_path = `${dir}/etc/profiles.yaml`;
  c.api!.server.console_path = `${dir}/etc/console.yaml`;
  c.prometheus!.enabled = false;
  const path = join(dir, "config.yaml");
  writeFileSync(path, stringify(c));
  writeFileSync(join(dir, "etc", "local_api_credentials.yaml"), `url: http://127.0.0.1:${CS_PORT}/\n`);
  return path;
};

const load = (url: string, headers: Record<string, string>, duration: number) =>
  new Promise<autocannon.Result>((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration, headers }, (err, result) => (err ? reject(err) : resolve(result)));
  });

/** Wall time of full startup streams (body read to the end): sorted ns, and the body size. */
const startupStreams = async (url: string, key: string) => {
  const times: number[] = [];
  let bytes = 0;
  let count = 0;
  for (let i = 0; i < STARTUP_RUNS + 1; i++) {
    const t0 = process.hrtime.bigint();
    const res = await fetch(`${url}/v1/decisions/stream?startup=true`, { headers: { "x-api-key": key } });
    const body = await res.text();
    const ns = Number(process.hrtime.bigint() - t0);
    if (!res.ok) throw new Error(`${url} startup stream: ${res.status} ${body.slice(0, 200)}`);
    if (i === 0) continue; // warm-up
    times.push(ns);
    bytes = body.length;
    count = (JSON.parse(body) as { new: unknown[] | null }).new?.length ?? 0;
  }
  return { times: times.sort((a, b) => a - b), bytes, count };
};

export async function runCrowdsecBench(): Promise<BenchRow[]> {
  const cs = ensureCrowdsec();
  const work = mkdtempSync(join(tmpdir(), "portcullis-crowdsec-bench-"));
  const children: ChildProcess[] = [];
  try {
    // ---- CrowdSec 1.4.6, API only ----
    const csDir = join(work, "crowdsec");
    const config = crowdsecConfig(cs, csDir);
    const cscli = (...args: string[]) => execFileSync(join(cs, "usr/bin/cscli"), ["-c", config, ...args], { cwd: csDir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const crowdsec = spawn(join(cs, "usr/bin/crowdsec"), ["-c", config, "-no-cs"], { cwd: csDir, stdio: ["ignore", "pipe", "pipe"] });
    children.push(crowdsec);
    // Its log level is warning: wait for the port instead of a line.
    await waitForPort(CS_PORT, crowdsec, "crowdsec");
    cscli("machines", "add", "--auto");
    const csKey = cscli("bouncers", "add", "portcullis-bench", "-o", "raw").trim().split("\n").pop()!.trim();
    const csv = join(work, "decisions.csv");
    writeFileSync(csv, `duration,scope,value,reason\n${Array.from({ length: N }, (_, i) => `24h,ip,${address(i)},bench`).join("\n")}\n`);
    log(`importing ${N} decisions into CrowdSec (cscli decisions import; about a minute per 100,000)`);
    cscli("decisions", "import", "-i", csv);

    // ---- Portcullis: the same addresses as blocks, written before the server starts ----
    const dataDir = join(work, "portcullis");
    const db = await openDatabase({ dataDir });
    await migrate(db);
    log(`inserting ${N} blocks into Portcullis`);
    for (let from = 0; from < N; from += 5000) {
      const values = Array.from({ length: Math.min(5000, N - from) }, (_, k) => address(from + k));
      await db.query(
        `INSERT INTO blocked_entities (id, entity_type, value, reason, created_by, created_at, expires_at, active, forced)
         SELECT gen_random_uuid(), 'ip', v, 'bench', 'bench', now(), now() + interval '24 hours', true, false FROM unnest($1::text[]) AS v`,
        [values],
      );
    }
    await db.close();
    const ours = spawn(process.execPath, [join(ROOT, "bin/portcullis.mjs"), "serve"], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORTCULLIS_PORT: String(OUR_PORT),
        PORTCULLIS_DATA_DIR: dataDir,
        PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN: TOKEN,
        PORTCULLIS_LOG__LEVEL: "warn",
        // Limits stay on (their cost is part of every request) but above what one load generator sends.
        PORTCULLIS_RATE_LIMIT__ENFORCEMENT_PER_MINUTE: "100000000",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(ours);
    await waitFor(ours, /listening on/, "portcullis");
    const created = await fetch(`http://127.0.0.1:${OUR_PORT}/crowdsec/bouncers`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "bench" }),
    });
    const ourKey = ((await created.json()) as { key: string }).key;

    // ---- same answers first ----
    const csUrl = `http://127.0.0.1:${CS_PORT}`;
    const ourUrl = `http://127.0.0.1:${OUR_PORT}`;
    for (const [name, url, key] of [["crowdsec", csUrl, csKey], ["portcullis", ourUrl, ourKey]] as const) {
      const res = await fetch(`${url}/v1/decisions?ip=${LOOKUP_IP}`, { headers: { "x-api-key": key } });
      const body = (await res.json()) as { value: string }[] | null;
      if (!res.ok || body?.[0]?.value !== LOOKUP_IP) throw new Error(`${name} does not answer the lookup: ${res.status} ${JSON.stringify(body)}`);
    }

    // ---- startup streams (before the load, on a quiet machine) ----
    const csStartup = await startupStreams(csUrl, csKey);
    const ourStartup = await startupStreams(ourUrl, ourKey);
    if (csStartup.count !== N || ourStartup.count !== N) throw new Error(`startup streams listed ${csStartup.count} (crowdsec) and ${ourStartup.count} (portcullis) of ${N}`);

    // ---- lookups: each warmed up, then measured ----
    const lookup = `/v1/decisions?ip=${LOOKUP_IP}`;
    await load(`${csUrl}${lookup}`, { "x-api-key": csKey }, 2);
    const csLookups = await load(`${csUrl}${lookup}`, { "x-api-key": csKey }, DURATION_S);
    // Longer warm-up: the JIT settles and the heap (100,000 blocks, index and mirror) is past its first major GCs.
    await load(`${ourUrl}${lookup}`, { "x-api-key": ourKey }, 5);
    const ourLookups = await load(`${ourUrl}${lookup}`, { "x-api-key": ourKey }, DURATION_S);
    if (csLookups.non2xx || ourLookups.non2xx) throw new Error(`non-2xx answers: crowdsec ${csLookups.non2xx}, portcullis ${ourLookups.non2xx}`);
    const ourMiss = await load(`${ourUrl}/v1/decisions?ip=8.8.4.4`, { "x-api-key": ourKey }, DURATION_S);

    const lookupRow = autocannonRow;
    const csLookupRef = { name: "crowdsec 1.4.6 lookup", rps: csLookups.requests.average };
    const startupRow = (operation: string, s: { times: number[] }, reference?: { name: string; median: number }): BenchRow => {
      const median = s.times[Math.floor(s.times.length / 2)]!;
      return {
        operation,
        n: s.times.length,
        opsPerSec: 1e9 / median,
        p50Ns: median,
        p99Ns: s.times[s.times.length - 1]!,
        ...(reference ? { reference: reference.name, ratio: reference.median / median } : {}),
      };
    };
    const csMedian = csStartup.times[Math.floor(csStartup.times.length / 2)]!;
    const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
    log(`startup stream bodies: crowdsec ${mb(csStartup.bytes)}, portcullis ${mb(ourStartup.bytes)}`);
    return [
      lookupRow(`crowdsec 1.4.6 GET /v1/decisions?ip= (${CONNECTIONS} conns, ${N} decisions)`, csLookups),
      lookupRow("portcullis GET /v1/decisions?ip= (blocked ip)", ourLookups, csLookupRef),
      lookupRow("portcullis GET /v1/decisions?ip= (not blocked)", ourMiss, csLookupRef),
      startupRow(`crowdsec 1.4.6 startup stream of ${N} (${mb(csStartup.bytes)})`, csStartup),
      startupRow(`portcullis startup stream of ${N} (${mb(ourStartup.bytes)})`, ourStartup, { name: "crowdsec 1.4.6 startup", median: csMedian }),
    ];
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : undefined)));
    rmSync(work, { recursive: true, force: true });
  }
}

const waitForPort = async (port: number, child: ChildProcess, what: string, timeoutMs = 60_000) => {
  let out = "";
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (out += String(d)));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited ${child.exitCode}:\n${out.slice(-2000)}`);
    try {
      await fetch(`http://127.0.0.1:${port}/v1/decisions`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`${what} did not listen on ${port} in ${timeoutMs} ms:\n${out.slice(-2000)}`);
};

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const { printTable } = await import("./table.ts");
  printTable(await runCrowdsecBench());
}
