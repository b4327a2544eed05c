// Action workflow throughput on PostgreSQL: requests created (policy decision recorded, dry-run on
// and off), approved (signed verdict) and executed (a block created through the blocklist service),
// through the app, one at a time (latency) and eight in flight (throughput). Reference: a bare
// INSERT of the same request row in the same run, i.e. what the database alone costs per request.
import { pathToFileURL } from "node:url";
import type { FastifyInstance } from "fastify";
import { benchConfig } from "./config.ts";
import { openDatabase } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { buildApp } from "../src/app/build.ts";
import { uuidv7 } from "../src/lib/ids.ts";
import { actionsRepo } from "../src/domains/actions/actions.repo.ts";
import { createScratchDatabase } from "../test/helpers/scratch-db.ts";
import { percentile, type BenchRow } from "./table.ts";

const PG_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const N = Number(process.env.BENCH_ACTIONS_N ?? 300);
const IN_FLIGHT = 8;
const ADMIN = "pc_bench-actions-admin-token-0123456789ab";

const RULE = {
  name: "bench-blocks-need-one-approver",
  description: "bench: one approver for blocks",
  target: "action_request",
  when: { op: "eq", field: "action.type", value: "block_entity" },
  outcome: "REQUIRE_APPROVAL",
  approvals: 1,
  priority: 200,
  tags: ["bench"],
};

/** Runs fn(i) for i in [0, n) with `inFlight` concurrent callers; per-call latency and overall ops/s. */
const run = async (operation: string, n: number, inFlight: number, fn: (i: number) => Promise<void>): Promise<BenchRow> => {
  const lat: number[] = [];
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t0 = process.hrtime.bigint();
        await fn(i);
        lat.push(Number(process.hrtime.bigint() - t0));
      }
    }),
  );
  const totalNs = Number(process.hrtime.bigint() - start);
  lat.sort((a, b) => a - b);
  return { operation, n, opsPerSec: (n * 1e9) / totalNs, p50Ns: percentile(lat, 0.5), p99Ns: percentile(lat, 0.99) };
};

const ip = (i: number, salt: number) => `5.${180 + salt}.${(i >> 8) & 255}.${i & 255}`;

export async function runActionsBench(): Promise<BenchRow[]> {
  const scratch = await createScratchDatabase(PG_URL, "pc_bench").catch((error: unknown) => {
    process.stderr.write(`actions bench skipped: no PostgreSQL at ${PG_URL} (${(error as Error).message})\n`);
    return undefined;
  });
  if (!scratch) return [];
  const config = benchConfig();
  const db = await openDatabase({ databaseUrl: scratch.url, poolSize: 10 });
  let app: FastifyInstance | undefined;
  try {
    await migrate(db);
    app = await buildApp({ config, db, logger: false });
    await app.services.identity.bootstrapAdmin(ADMIN);
    const inject = async (method: "GET" | "POST", url: string, token: string, payload?: object, expect = 200) => {
      const res = await app!.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
      if (res.statusCode !== expect) throw new Error(`${method} ${url} answered ${res.statusCode}: ${res.body}`);
      return res.json() as Record<string, any>;
    };
    const keyFor = async (role: string) => {
      await inject("POST", "/users", ADMIN, { username: `bench-${role}`, role, kind: "service" }, 201);
      return (await inject("POST", "/auth/keys", ADMIN, { name: role, user: `bench-${role}`, role }, 201)).key as string;
    };
    const analyst = await keyFor("analyst");
    const approver = await keyFor("approver");
    const executor = await keyFor("executor");
    await inject("POST", "/rules", analyst, RULE, 201);
    await inject("POST", `/rules/${RULE.name}/versions/1/submit`, analyst);
    await inject("POST", `/rules/${RULE.name}/versions/1/review`, approver, { decision: "approve", comment: "bench" });
    await inject("POST", `/rules/${RULE.name}/versions/1/activate`, analyst);

    const rows: BenchRow[] = [];
    // Reference: the request row alone, inserted bare (no decision, no audit, no history).
    const repo = actionsRepo(db.orm);
    const sample = await inject("POST", "/security/actions/", analyst, { action_type: "block_entity", payload: { entity_type: "ip", value: "5.179.0.1" }, dry_run: false }, 201);
    const row = (await repo.get(sample.id))!;
    const bare = await run("bare INSERT of a request row (reference)", N, 1, async () => {
      await repo.insert({ ...row, id: uuidv7() });
    });
    rows.push(bare);
    const ref = { reference: bare.operation, rps: bare.opsPerSec };
    const withRef = (r: BenchRow): BenchRow => ({ ...r, reference: ref.reference, ratio: r.opsPerSec / ref.rps });

    for (const [label, inFlight, salt] of [["1 at a time", 1, 0], [`${IN_FLIGHT} in flight`, IN_FLIGHT, 1]] as const) {
      const ids: string[] = [];
      rows.push(
        withRef(
          await run(`create block_entity, dry-run off (${label})`, N, inFlight, async (i) => {
            ids[i] = (await inject("POST", "/security/actions/", analyst, { action_type: "block_entity", payload: { entity_type: "ip", value: ip(i, salt) }, dry_run: false }, 201)).id;
          }),
        ),
      );
      rows.push(
        withRef(
          await run(`approve, signed verdict (${label})`, N, inFlight, async (i) => {
            await inject("POST", `/security/actions/${ids[i]}/approve`, approver, { note: "bench" });
          }),
        ),
      );
      rows.push(
        withRef(
          await run(`execute: block created (${label})`, N, inFlight, async (i) => {
            await inject("POST", `/security/actions/${ids[i]}/execute`, executor);
          }),
        ),
      );
    }
    // The dry-run reads every active block (overlaps), so its cost grows with the blocklist (2N here).
    rows.push(
      withRef(
        await run(`create block_entity, dry-run on, ${2 * N} active blocks (1 at a time)`, Math.min(N, 100), 1, async (i) => {
          await inject("POST", "/security/actions/", analyst, { action_type: "block_entity", payload: { entity_type: "ip", value: ip(i, 2) } }, 201);
        }),
      ),
    );
    return rows;
  } finally {
    await app?.close();
    await db.close();
    await scratch.drop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const { printTable } = await import("./table.ts");
  printTable(await runActionsBench());
}
