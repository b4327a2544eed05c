// Two processes appending to one PostgreSQL audit log at once (as two server nodes would): the result
// must be one gap-free log, and every checkpoint either of them signed consistent with every later one.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { describePostgres, openTestDatabase, TEST_SIGNING_KEY } from "./helpers/harness.ts";
import { migrate } from "../src/db/migrate.ts";
import { memoryTree, consistencyProof, leafHash, rootFromLeafHashes, verifyConsistency } from "../src/lib/merkle.ts";
import { openNote, parseCheckpoint, parseVerifierKey, verifierKey, ed25519RawPublicKey } from "../src/lib/signed-note.ts";
import { createPublicKey } from "node:crypto";

const execFileP = promisify(execFile);
const PER_WRITER = 2000;

describePostgres("two writers on one postgres audit log", () => {
  it("produce one gap-free log whose checkpoints are all mutually consistent", async () => {
    const db = await openTestDatabase("postgres");
    try {
      await migrate(db);
      const writer = join(import.meta.dirname, "helpers", "audit-writer.ts");
      const run = (name: string) =>
        execFileP(process.execPath, ["--import", "tsx", writer, db.url!, name, String(PER_WRITER), TEST_SIGNING_KEY], { cwd: join(import.meta.dirname, "..") });
      const [a, b] = await Promise.all([run("node-a"), run("node-b")]);
      expect(a.stdout).toContain("node-a done");
      expect(b.stdout).toContain("node-b done");

      const rows = await db.query<{ seq: string; leaf: string; leaf_hash: Uint8Array }>("SELECT seq, leaf, leaf_hash FROM audit_log ORDER BY seq");
      expect(rows).toHaveLength(2 * PER_WRITER);
      rows.forEach((r, i) => expect(Number(r.seq)).toBe(i));
      const hashes = rows.map((r) => Buffer.from(r.leaf_hash));
      rows.forEach((r, i) => expect(leafHash(Buffer.from(r.leaf, "utf8")).equals(hashes[i]!)).toBe(true));
      const writers = new Set(rows.map((r) => (JSON.parse(r.leaf) as { details: { writer: string } }).details.writer));
      expect(writers).toEqual(new Set(["node-a", "node-b"]));

      const vkey = parseVerifierKey(verifierKey("test.portcullis/audit", ed25519RawPublicKey(createPublicKey(TEST_SIGNING_KEY))));
      const checkpoints = (await db.query<{ note: string }>("SELECT note FROM audit_checkpoints ORDER BY tree_size")).map((r) =>
        parseCheckpoint(openNote(r.note, [vkey]).body),
      );
      expect(checkpoints.length).toBeGreaterThan(4);
      expect(checkpoints.at(-1)!.size).toBe(2 * PER_WRITER);
      const tree = memoryTree(hashes);
      for (const cp of checkpoints) expect(cp.rootHash.equals(rootFromLeafHashes(hashes.slice(0, cp.size)))).toBe(true);
      for (let i = 0; i < checkpoints.length; i++) {
        for (let j = i + 1; j < checkpoints.length; j++) {
          const [older, newer] = [checkpoints[i]!, checkpoints[j]!];
          const proof = await consistencyProof(older.size, newer.size, tree.read);
          expect(verifyConsistency(older.size, newer.size, older.rootHash, newer.rootHash, proof)).toBe(true);
        }
      }
    } finally {
      await db.close();
    }
  }, 180_000);
});
