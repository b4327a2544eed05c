// The audit log as a transparency log, on a real database: entries carry the canonical leaf they were
// hashed from, checkpoints are signed and verifiable with the published key, proofs verify, and an
// attacker with database access (triggers disabled as superuser) is caught by the auditor's tools.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createPrivateKey } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, DB_KINDS, TEST_SIGNING_KEY, type TestApp } from "./helpers/harness.ts";
import { leafHash, rootFromLeafHashes, verifyConsistency, verifyInclusion } from "../src/lib/merkle.ts";
import { formatCheckpoint, openNote, parseCheckpoint, parseVerifierKey, signNote } from "../src/lib/signed-note.ts";
import { verifyExportDir, verifyServer, VerifyFailure, type ServerClient } from "../src/cli/audit-verify.ts";

const ROOT = join(import.meta.dirname, "..");
const execFileP = promisify(execFile);
const cli = (args: string[], env: Record<string, string> = {}) =>
  execFileP(process.execPath, [join(ROOT, "bin/portcullis.mjs"), ...args], { cwd: ROOT, env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe.each(DB_KINDS)("transparency log on %s", (kind) => {
  let t: TestApp;
  let url: string;
  const work = mkdtempSync(join(tmpdir(), "portcullis-audit-"));
  beforeAll(async () => {
    t = await createTestApp(kind);
    url = await t.app.listen({ port: 0, host: "127.0.0.1" });
    for (let i = 0; i < 20; i++) {
      await t.app.inject({ method: "POST", url: "/security/policy/blocks", headers: t.auth(), payload: { entity_type: "user", value: `attacker-${i}`, reason: `r${i}` } });
    }
  });
  afterAll(async () => {
    await t?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const get = async (path: string) => t.app.inject({ method: "GET", url: path, headers: t.auth() });
  const client: ServerClient = {
    text: async (path) => (await get(path)).body,
    json: async <T>(path: string) => (await get(path)).json() as T,
  };
  const allEntries = async () => (await get("/audit/entries?limit=1000")).json().items as Array<Record<string, any>>;
  /** Runs `fn` as the database superuser with triggers off: what an attacker with DB access can do. */
  const asAttacker = async (statements: ReturnType<typeof sql>[]) => {
    await t.db.transaction(async (tx) => {
      await tx.execute(sql`SET LOCAL session_replication_role = replica`);
      for (const s of statements) await tx.execute(s);
    });
  };
  /** Puts a row back exactly as it was (bytea columns as \\x hex, which jsonb_populate_record reads). */
  const reinsert = (table: "audit_log" | "audit_checkpoints", row: Record<string, unknown>) => {
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) copy[k] = v instanceof Uint8Array ? `\\x${Buffer.from(v).toString("hex")}` : v;
    return sql`INSERT INTO ${sql.raw(table)} SELECT * FROM jsonb_populate_record(NULL::${sql.raw(table)}, ${JSON.stringify(copy)}::jsonb)`;
  };
  const failure = async (p: Promise<unknown>) => {
    const e = await p.then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(VerifyFailure);
    return e as VerifyFailure;
  };

  it("stores each entry with its canonical leaf and leaf hash, indices gap-free from 0", async () => {
    const entries = await allEntries();
    expect(entries.length).toBe(22);
    entries.forEach((e, i) => {
      expect(e.index).toBe(i);
      expect(Buffer.from(e.leaf_hash, "base64").equals(leafHash(Buffer.from(e.leaf, "utf8")))).toBe(true);
      const { leaf, leaf_hash, ...shown } = e;
      expect(JSON.parse(leaf)).toEqual(shown);
    });
  });

  it("signs checkpoints that verify with the published key and match the entries' root", async () => {
    const vkey = (await get("/audit/public-key")).body.trim();
    expect(vkey).toMatch(/^test\.portcullis\/audit\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/);
    const note = (await t.app.inject({ method: "POST", url: "/audit/checkpoint", headers: t.auth() })).json().note as string;
    const { body } = openNote(note, [parseVerifierKey(vkey)]);
    const cp = parseCheckpoint(body);
    const entries = await allEntries();
    expect(cp.size).toBe(entries.length);
    expect(cp.rootHash.equals(rootFromLeafHashes(entries.map((e) => Buffer.from(e.leaf_hash, "base64"))))).toBe(true);
    expect((await get("/audit/checkpoint")).body).toBe(note);
    expect((await get("/audit/checkpoint")).headers["content-type"]).toContain("text/plain");
  });

  it("serves inclusion proofs for every entry and consistency proofs between checkpoints", async () => {
    const entries = await allEntries();
    const hashes = entries.map((e) => Buffer.from(e.leaf_hash, "base64"));
    for (const size of [1, 7, 8, 13, entries.length]) {
      const root = rootFromLeafHashes(hashes.slice(0, size));
      for (let i = 0; i < size; i++) {
        const res = (await get(`/audit/proof/inclusion?index=${i}&tree_size=${size}`)).json();
        expect(verifyInclusion(hashes[i]!, i, size, res.proof.map((p: string) => Buffer.from(p, "base64")), root)).toBe(true);
      }
      for (const from of [1, 2, 5, size]) {
        if (from > size) continue;
        const res = (await get(`/audit/proof/consistency?from=${from}&to=${size}`)).json();
        expect(verifyConsistency(from, size, rootFromLeafHashes(hashes.slice(0, from)), root, res.proof.map((p: string) => Buffer.from(p, "base64")))).toBe(true);
      }
    }
    expect((await get(`/audit/proof/inclusion?index=22&tree_size=22`)).json().code).toBe("INDEX_OUT_OF_RANGE");
    expect((await get(`/audit/proof/inclusion?index=0&tree_size=100000`)).json().code).toBe("TREE_SIZE_NOT_REACHED");
    expect((await get(`/audit/proof/consistency?from=5&to=3`)).json()).toMatchObject({ code: "VALIDATION_FAILED", errors: [{ path: "from" }] });
    expect((await get(`/audit/proof/inclusion?index=-1&tree_size=3`)).statusCode).toBe(400);
  });

  it("exports and verifies with the CLI, pinning the key", async () => {
    const dir = join(work, "export-ok");
    const env = { PORTCULLIS_URL: url, PORTCULLIS_TOKEN: t.adminToken };
    const exported = await cli(["audit", "export", "--out", dir, "--json"], env);
    expect(exported.code, exported.stderr).toBe(0);
    const vkey = (await get("/audit/public-key")).body.trim();
    const verified = await cli(["audit", "verify", "--dir", dir, "--key", vkey, "--json"]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, tree_size: readFileSync(join(dir, "entries.ndjson"), "utf8").trim().split("\n").length });
    // Entries beyond the signed checkpoint, fields not covered by the leaf, junk lines: all refused.
    const { cpSync } = await import("node:fs");
    const variant = (name: string, edit: (lines: string[]) => string[]) => {
      const d = join(work, name);
      cpSync(dir, d, { recursive: true });
      const lines = readFileSync(join(d, "entries.ndjson"), "utf8").trim().split("\n");
      writeFileSync(join(d, "entries.ndjson"), `${edit(lines).join("\n")}\n`);
      return d;
    };
    const extra = variant("extra-line", (l) => [...l, l[0]!]);
    expect((await cli(["audit", "verify", "--dir", extra, "--key", vkey])).code).toBe(3);
    const field = variant("extra-field", (l) => [JSON.stringify({ ...JSON.parse(l[0]!), approved_by: "CISO" }), ...l.slice(1)]);
    const fieldResult = await cli(["audit", "verify", "--dir", field, "--key", vkey]);
    expect(fieldResult.code).toBe(3);
    expect(fieldResult.stderr).toContain("approved_by");
    const junk = variant("null-line", (l) => ["null", ...l.slice(1)]);
    expect((await cli(["audit", "verify", "--dir", junk, "--key", vkey])).code).toBe(4);
    const unpinned = await cli(["audit", "verify", "--dir", dir, "--json"]);
    expect(JSON.parse(unpinned.stdout)).toMatchObject({ ok: true, key_pinned: false });
    expect(unpinned.stderr).toContain("warning");
    // A checkpoint rewritten in the export fails its signature: exit 1.
    const note = readFileSync(join(dir, "checkpoint"), "utf8");
    writeFileSync(join(dir, "checkpoint"), note.replace(/\n(\d+)\n/, (_m, n) => `\n${Number(n) - 1}\n`));
    const forged = await cli(["audit", "verify", "--dir", dir, "--key", vkey]);
    expect(forged.code).toBe(1);
    expect(forged.stderr).toMatch(/signature/);
  });

  it("detects a flipped byte, a deleted entry, swapped entries and a truncated tail in the database", async () => {
    const vkey = (await get("/audit/public-key")).body.trim();
    await t.app.inject({ method: "POST", url: "/audit/checkpoint", headers: t.auth() });
    const exportAndVerify = async (name: string) => {
      const dir = join(work, name);
      const r = await cli(["audit", "export", "--out", dir], { PORTCULLIS_URL: url, PORTCULLIS_TOKEN: t.adminToken });
      expect(r.code, r.stderr).toBe(0);
      return verifyExportDir(dir, vkey);
    };
    await exportAndVerify("clean");
    const entries = await allEntries();
    const e5 = entries[5]!;
    const e6 = entries[6]!;

    // 1. One byte of one entry changed (reason r3 -> r4 in its leaf and its JSON column).
    const flipped = (e5.leaf as string).replace('"reason":"r3"', '"reason":"r4"');
    expect(flipped).not.toBe(e5.leaf);
    await asAttacker([sql`UPDATE audit_log SET leaf = ${flipped} WHERE seq = 5`]);
    expect((await failure(exportAndVerify("flip"))).exitCode).toBe(3);
    await asAttacker([sql`UPDATE audit_log SET leaf = ${e5.leaf} WHERE seq = 5`]);

    // 2. One entry deleted.
    const row6 = (await t.db.query<Record<string, unknown>>("SELECT * FROM audit_log WHERE seq = 6"))[0]!;
    await asAttacker([sql`DELETE FROM audit_log WHERE seq = 6`]);
    expect((await failure(exportAndVerify("delete"))).message).toMatch(/entry 6/);
    await asAttacker([reinsert("audit_log", row6)]);
    await exportAndVerify("restored");

    // 3. Two entries swapped (their contents exchanged, indices kept).
    await asAttacker([
      sql`UPDATE audit_log SET leaf = ${e6.leaf}, leaf_hash = ${Buffer.from(e6.leaf_hash, "base64")} WHERE seq = 5`,
      sql`UPDATE audit_log SET leaf = ${e5.leaf}, leaf_hash = ${Buffer.from(e5.leaf_hash, "base64")} WHERE seq = 6`,
    ]);
    expect((await failure(exportAndVerify("swap"))).exitCode).toBe(3);
    await asAttacker([
      sql`UPDATE audit_log SET leaf = ${e5.leaf}, leaf_hash = ${Buffer.from(e5.leaf_hash, "base64")} WHERE seq = 5`,
      sql`UPDATE audit_log SET leaf = ${e6.leaf}, leaf_hash = ${Buffer.from(e6.leaf_hash, "base64")} WHERE seq = 6`,
    ]);
    await exportAndVerify("restored-2");

    // 4. The tail truncated: entries after 15 gone, the signed checkpoint still says more.
    const tail = await t.db.query<Record<string, unknown>>("SELECT * FROM audit_log WHERE seq > 15 ORDER BY seq");
    await asAttacker([sql`DELETE FROM audit_log WHERE seq > 15`]);
    const truncated = await failure(exportAndVerify("truncate"));
    expect(truncated.exitCode).toBe(3);
    expect(truncated.message).toMatch(/truncated/);
    await asAttacker(tail.map((row) => reinsert("audit_log", row)));
    await exportAndVerify("restored-3");
  });

  it("detects a rewritten checkpoint, a rollback and a fork against a trusted checkpoint", async () => {
    const vkey = (await get("/audit/public-key")).body.trim();
    const trusted = join(work, "trusted-checkpoint");
    // First use: trust the current checkpoint.
    const first = await verifyServer(client, trusted, { key: vkey, full: true });
    expect(first).toMatchObject({ first_use: true, full: true });
    // The log grows; the next verification proves consistency and advances the trusted file.
    await t.app.inject({ method: "POST", url: "/security/policy/blocks", headers: t.auth(), payload: { entity_type: "user", value: "late-attacker" } });
    await t.app.inject({ method: "POST", url: "/audit/checkpoint", headers: t.auth() });
    const second = await verifyServer(client, trusted, { key: vkey });
    expect(second.previous_size).toBe(first.tree_size);
    expect(second.tree_size).toBe(first.tree_size + 1);

    // Rewritten checkpoint in the database: its signature no longer verifies (exit 1).
    const latest = (await t.db.query<{ tree_size: string | number; note: string }>("SELECT tree_size, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1"))[0]!;
    const rewritten = latest.note.replace(/\n([A-Za-z0-9+/=]{44})\n/, (_m, root: string) => `\n${Buffer.alloc(32, 7).toString("base64")}\n`);
    expect(rewritten).not.toBe(latest.note);
    await asAttacker([sql`UPDATE audit_checkpoints SET note = ${rewritten} WHERE tree_size = ${Number(latest.tree_size)}`]);
    expect((await failure(verifyServer(client, trusted, { key: vkey }))).exitCode).toBe(1);
    await asAttacker([sql`UPDATE audit_checkpoints SET note = ${latest.note} WHERE tree_size = ${Number(latest.tree_size)}`]);

    // Rollback: the server serves an older checkpoint than the one the auditor holds (exit 2).
    const newest = await t.db.query<Record<string, unknown>>("SELECT * FROM audit_checkpoints WHERE tree_size = (SELECT max(tree_size) FROM audit_checkpoints)");
    await asAttacker([sql`DELETE FROM audit_checkpoints WHERE tree_size = ${Number(latest.tree_size)}`]);
    const rollback = await failure(verifyServer(client, trusted, { key: vkey }));
    expect(rollback.exitCode).toBe(2);
    expect(rollback.message).toMatch(/rollback/);
    await asAttacker([reinsert("audit_checkpoints", newest[0]!)]);
    await verifyServer(client, trusted, { key: vkey });

    // Fork: someone was shown a different tree of the same size, signed by the same key (exit 2).
    const cp = parseCheckpoint(openNote(readFileSync(trusted, "utf8"), [parseVerifierKey(vkey)]).body);
    const forkNote = signNote(formatCheckpoint({ origin: cp.origin, size: cp.size, rootHash: Buffer.alloc(32, 1) }), cp.origin, createPrivateKey(TEST_SIGNING_KEY));
    const forkFile = join(work, "fork-checkpoint");
    writeFileSync(forkFile, forkNote);
    const fork = await failure(verifyServer(client, forkFile, { key: vkey }));
    expect(fork.exitCode).toBe(2);
    expect(fork.message).toMatch(/fork/);
    // ...and the same forked view one entry behind is inconsistent with today's log.
    const behind = signNote(formatCheckpoint({ origin: cp.origin, size: cp.size - 1, rootHash: Buffer.alloc(32, 1) }), cp.origin, createPrivateKey(TEST_SIGNING_KEY));
    writeFileSync(forkFile, behind);
    expect((await failure(verifyServer(client, forkFile, { key: vkey }))).exitCode).toBe(2);
  });
});

describe("check-proof on the RFC 9162 test vectors", () => {
  it("gives exactly each vector's wantErr through the CLI", async () => {
    const { readdirSync } = await import("node:fs");
    const base = join(ROOT, "..", "shared", "fixtures", "rfc9162");
    const files = ["inclusion", "consistency"].flatMap((d) =>
      (readdirSync(join(base, d), { recursive: true }) as string[]).filter((f) => f.endsWith(".json")).map((f) => join(base, d, f)),
    );
    expect(files.length).toBeGreaterThan(20);
    const all = await cli(["audit", "check-proof", ...files, "--json"]);
    const results = JSON.parse(all.stdout) as { file: string; verified: boolean }[];
    for (const r of results) {
      const wantErr = JSON.parse(readFileSync(r.file, "utf8")).wantErr as boolean;
      expect(r.verified, r.file).toBe(!wantErr);
    }
    const good = results.find((r) => r.verified)!;
    const bad = results.find((r) => !r.verified)!;
    expect((await cli(["audit", "check-proof", good.file])).code).toBe(0);
    expect((await cli(["audit", "check-proof", bad.file])).code).toBe(1);
    const junk = join(tmpdir(), `not-a-proof-${process.pid}.json`);
    writeFileSync(junk, "{ nope");
    expect((await cli(["audit", "check-proof", junk])).code).toBe(4);
    rmSync(junk);
  }, 60_000);
});
