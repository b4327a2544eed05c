// Login cost: argon2id verification at the configured parameters (the deliberate cost of a login),
// and a whole POST /auth/login through the app on PGlite, for a real user and for an unknown one
// (which verifies a dummy hash so both take the same time). In-process, one request at a time.
import { pathToFileURL } from "node:url";
import { hash, verify } from "@node-rs/argon2";
import { loadConfig } from "../src/config/index.ts";
import { openDatabase } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { buildApp } from "../src/app/build.ts";
import { generateKeyPairSync } from "node:crypto";
import { percentile, type BenchRow } from "./table.ts";

const N = Number(process.env.BENCH_LOGIN_N ?? 40);

const timeAll = async (n: number, fn: () => Promise<unknown>) => {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - start));
  }
  samples.sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  return { p50Ns: percentile(samples, 0.5), p99Ns: percentile(samples, 0.99), opsPerSec: 1e9 / mean, n };
};

export async function runAuthBench(): Promise<BenchRow[]> {
  const pem = () => generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const config = loadConfig({
    flags: { "log.level": "silent", "signing.privateKey": pem(), "auth.jwtPrivateKey": pem(), "rateLimit.enabled": false },
    env: {},
    cwd: process.cwd(),
  }).config;
  const options = { algorithm: 2 as const, memoryCost: config.auth.argon2MemoryKiB, timeCost: config.auth.argon2Iterations, parallelism: 1 };
  const password = "bench-login-passphrase-5d1e";
  const phc = await hash(password, options);
  const argon = await timeAll(N, () => verify(phc, password));
  const rows: BenchRow[] = [
    { operation: `argon2id verify (${config.auth.argon2MemoryKiB} KiB, t=${config.auth.argon2Iterations}, p=1)`, ...argon },
  ];
  const reference = { reference: "argon2id verify", rps: argon.opsPerSec };
  const db = await openDatabase({});
  await migrate(db);
  const app = await buildApp({ config, db, logger: false });
  try {
    const token = "pc_bench-auth-admin-token-0123456789abcdef";
    await app.services.identity.bootstrapAdmin(token);
    const created = await app.inject({ method: "POST", url: "/users", headers: { authorization: `Bearer ${token}` }, payload: { username: "bench-user", role: "viewer", password } });
    if (created.statusCode !== 201) throw new Error(`creating the bench user failed: ${created.body}`);
    const login = (username: string, pw: string, expect: number) => async () => {
      const res = await app.inject({ method: "POST", url: "/auth/login", payload: { username, password: pw } });
      if (res.statusCode !== expect) throw new Error(`login answered ${res.statusCode}: ${res.body}`);
    };
    const ok = await timeAll(N, login("bench-user", password, 200));
    rows.push({ operation: "POST /auth/login (success, PGlite)", ...ok, reference: reference.reference, ratio: ok.opsPerSec / reference.rps });
    const unknown = await timeAll(N, login("no-such-user", password, 401));
    rows.push({ operation: "POST /auth/login (unknown user)", ...unknown, reference: reference.reference, ratio: unknown.opsPerSec / reference.rps });
    // Wrong passwords lock the account after the threshold; stay under it between unlocks.
    const wrong = await timeAll(Math.min(N, config.auth.lockoutThreshold - 1), login("bench-user", "wrong-passphrase-00000", 401));
    rows.push({ operation: "POST /auth/login (wrong password)", ...wrong, reference: reference.reference, ratio: wrong.opsPerSec / reference.rps });
  } finally {
    await app.close();
    await db.close();
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const { printTable } = await import("./table.ts");
  printTable(await runAuthBench());
}
