// The transparency-log view of the audit table: signed checkpoints (C2SP tlog-checkpoint as C2SP
// signed notes, Ed25519), inclusion and consistency proofs (RFC 9162). Before a checkpoint is signed
// it is proven consistent with the previous one from the stored tree, so the log never signs two
// inconsistent states; checkpointers on several nodes serialise on an advisory lock.
import type { Database } from "../../db/client.ts";
import { COMMON_ERRORS, defineErrors } from "../../lib/errors.ts";
import { consistencyProof, inclusionProof, rootAt, verifyConsistency } from "../../lib/merkle.ts";
import { formatCheckpoint, keyId, signNote, verifierKey } from "../../lib/signed-note.ts";
import type { Clock } from "../../lib/time.ts";
import { requirePermission, type Actor } from "../identity/principal.ts";
import type { AuditRepo, CheckpointRow } from "./audit.repo.ts";
import type { SigningKey } from "./signing-key.ts";

export const TRANSPARENCY_ERRORS = defineErrors({
  INDEX_OUT_OF_RANGE: { status: 422, title: "Index outside the tree" },
  TREE_SIZE_NOT_REACHED: { status: 422, title: "The log is not that large yet" },
  LOG_INCONSISTENT: { status: 500, title: "The stored log is inconsistent with its last checkpoint" },
});

export type Checkpoint = { tree_size: number; root_hash: string; note: string; key_id: string; created_at: string };

const toCheckpoint = (row: CheckpointRow): Checkpoint => ({
  tree_size: row.treeSize,
  root_hash: row.rootHash.toString("base64"),
  note: row.note,
  key_id: row.keyId,
  created_at: row.createdAt.toISOString(),
});

type Deps = { db: Database; repo: AuditRepo; clock: Clock; key: SigningKey };

export const transparencyService = ({ db, repo, clock, key }: Deps) => {
  const keyIdHex = keyId(key.origin, key.publicKeyRaw).toString("hex");
  const publicKey = verifierKey(key.origin, key.publicKeyRaw);

  /** Signs a checkpoint for the current tree if it grew since the last one; returns the latest. */
  const issueCheckpoint = async (): Promise<CheckpointRow> =>
    db.transaction(async (tx) => {
      await repo.lockForCheckpoint(tx);
      const last = await repo.latestCheckpoint(tx);
      const size = await repo.treeSize(tx);
      if (last && last.treeSize >= size) return last;
      const read = repo.nodeReader(tx);
      const root = await rootAt(size, read);
      if (last && last.treeSize > 0) {
        const proof = await consistencyProof(last.treeSize, size, read);
        if (!verifyConsistency(last.treeSize, size, last.rootHash, root, proof))
          throw TRANSPARENCY_ERRORS.LOG_INCONSISTENT(
            `refusing to sign tree size ${size}: it is not consistent with the checkpoint at size ${last.treeSize}`,
          );
      }
      const note = signNote(formatCheckpoint({ origin: key.origin, size, rootHash: root }), key.origin, key.privateKey);
      const row: CheckpointRow = { treeSize: size, rootHash: root, note, keyId: keyIdHex, createdAt: clock.now() };
      await repo.insertCheckpoint(tx, row);
      return row;
    });

  const latestCheckpoint = async (actor: Actor): Promise<string> => {
    requirePermission(actor, "audit:read");
    const last = await repo.latestCheckpoint();
    // The first reader of an empty history gets a checkpoint made on demand.
    return (last ?? (await issueCheckpoint())).note;
  };

  const checkpointNow = async (actor: Actor): Promise<Checkpoint> => {
    requirePermission(actor, "audit:checkpoint");
    return toCheckpoint(await issueCheckpoint());
  };

  const listCheckpoints = async (actor: Actor, before: number | undefined, limit: number) => {
    requirePermission(actor, "audit:read");
    const rows = await repo.listCheckpoints(before, limit + 1);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page.map(toCheckpoint), next_cursor: rows.length > limit && last ? String(last.treeSize) : null };
  };

  const requireSize = async (treeSize: number) => {
    const size = await repo.treeSize();
    if (treeSize > size) throw TRANSPARENCY_ERRORS.TREE_SIZE_NOT_REACHED(`the log has ${size} entries; tree_size ${treeSize} is not reached yet`);
  };

  const proveInclusion = async (actor: Actor, index: number, treeSize: number) => {
    requirePermission(actor, "audit:read");
    if (index >= treeSize)
      throw TRANSPARENCY_ERRORS.INDEX_OUT_OF_RANGE(`index ${index} is not inside a tree of size ${treeSize}`, {
        errors: [{ path: "index", message: "must be less than tree_size" }],
      });
    await requireSize(treeSize);
    const proof = await inclusionProof(index, treeSize, repo.nodeReader());
    return { index, tree_size: treeSize, proof: proof.map((p) => p.toString("base64")) };
  };

  const proveConsistency = async (actor: Actor, from: number, to: number) => {
    requirePermission(actor, "audit:read");
    if (from > to)
      throw COMMON_ERRORS.VALIDATION_FAILED(`from (${from}) must not be greater than to (${to})`, {
        errors: [{ path: "from", message: "must be less than or equal to to" }],
      });
    await requireSize(to);
    const proof = await consistencyProof(from, to, repo.nodeReader());
    return { from, to, proof: proof.map((p) => p.toString("base64")) };
  };

  return { issueCheckpoint, latestCheckpoint, checkpointNow, listCheckpoints, proveInclusion, proveConsistency, publicKey, origin: key.origin };
};
export type TransparencyService = ReturnType<typeof transparencyService>;
