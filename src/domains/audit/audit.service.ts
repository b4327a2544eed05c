// The audit domain's write side and entry reads. `append(tx, actor, entry)` is called by every
// service inside the transaction that makes the change, so a change and its audit entry commit or
// fail together. Each entry becomes a leaf of the Merkle transparency log: its RFC 8785 canonical
// JSON is stored beside it, hashed per RFC 9162, and the tree's new complete subtrees are written in
// the same transaction.
import { afterCommit, type Tx } from "../../db/client.ts";
import { COMMON_ERRORS } from "../../lib/errors.ts";
import { canonicalize } from "../../lib/jcs.ts";
import { appendMany, leafHash, nodeKeyString, rangeNodes, type NodeReader } from "../../lib/merkle.ts";
import type { Clock } from "../../lib/time.ts";
import { actorIdentity, requirePermission, type Actor } from "../identity/principal.ts";
import type { AuditFilter, AuditRepo, AuditRow } from "./audit.repo.ts";

export type AuditEntryInput = {
  /** dotted verb, e.g. "blocklist.block.created" */
  action: string;
  target?: { type: string; id: string };
  before?: unknown;
  after?: unknown;
  details?: unknown;
};

/** What is hashed: the entry without its hash. */
export type AuditLeaf = {
  index: number;
  occurred_at: string;
  actor: { type: string; id: string; name: string };
  action: string;
  target: { type: string; id: string } | null;
  request_id: string | null;
  before: unknown;
  after: unknown;
  details: unknown;
};

export type AuditEntry = AuditLeaf & { leaf: string; leaf_hash: string };

/** The entry as served: parsed from the stored canonical leaf, so what you read is what was hashed. */
export const toAuditEntry = (row: AuditRow): AuditEntry => ({
  ...(JSON.parse(row.leaf) as AuditLeaf),
  leaf: row.leaf,
  leaf_hash: row.leafHash.toString("base64"),
});

// JSON round trip: dates become ISO strings and undefined members vanish, exactly as stored in JSONB.
const json = (v: unknown) => (v === undefined ? null : (JSON.parse(JSON.stringify(v)) as unknown));

type Deps = { repo: AuditRepo; clock: Clock };

export const auditService = ({ repo, clock }: Deps) => {
  // The right edge of the committed tree (the perfect subtrees tiling [0, size)): all an append needs.
  // Set after a commit; used only when the size AND the last leaf hash read under the appender lock
  // match, so it cannot describe a different tree: not after another node appended, and not after a
  // transaction that looked committed but was rolled back (PostgreSQL turns COMMIT of a failed
  // transaction into ROLLBACK without an error).
  let frontier: { size: number; lastLeafHash: Buffer | null; nodes: Map<string, Buffer> } | undefined;

  /** Appends entries as one batch (one lock, at most one tree read); returns their indices. */
  const appendBatch = async (tx: Tx, actor: Actor, entries: AuditEntryInput[]): Promise<number[]> => {
    const { size, lastLeafHash } = await repo.lockForAppend(tx);
    const who = actorIdentity(actor);
    const occurredAt = clock.now();
    const rows: AuditRow[] = entries.map((entry, i) => {
      const leafBody: AuditLeaf = {
        index: size + i,
        occurred_at: occurredAt.toISOString(),
        actor: who,
        action: entry.action,
        target: entry.target ? { type: entry.target.type, id: entry.target.id } : null,
        request_id: actor.requestId,
        before: json(entry.before),
        after: json(entry.after),
        details: json(entry.details),
      };
      const leaf = canonicalize(leafBody);
      return {
        seq: size + i,
        occurredAt,
        actorType: who.type,
        actorId: who.id,
        actorName: who.name,
        action: entry.action,
        targetType: leafBody.target?.type ?? null,
        targetId: leafBody.target?.id ?? null,
        requestId: actor.requestId,
        leaf,
        leafHash: leafHash(Buffer.from(leaf, "utf8")),
      };
    });
    const cached =
      frontier !== undefined &&
      frontier.size === size &&
      (frontier.lastLeafHash === null ? lastLeafHash === null : lastLeafHash !== null && frontier.lastLeafHash.equals(lastLeafHash));
    const edge = cached ? frontier!.nodes : await repo.nodeReader(tx)(rangeNodes(0, size));
    const fromEdge: NodeReader = async (keys) => {
      const missing = keys.filter((k) => !edge.has(nodeKeyString(k)));
      const found = missing.length ? await repo.nodeReader(tx)(missing) : new Map<string, Buffer>();
      for (const k of keys) if (edge.has(nodeKeyString(k))) found.set(nodeKeyString(k), edge.get(nodeKeyString(k))!);
      return found;
    };
    const nodes = await appendMany(
      size,
      rows.map((r) => r.leafHash),
      fromEdge,
    );
    await repo.insertEntriesAndNodes(tx, rows, nodes);
    const newSize = size + rows.length;
    const created = new Map(nodes.map((n) => [nodeKeyString(n.key), n.hash]));
    const next = new Map<string, Buffer>();
    for (const k of rangeNodes(0, newSize)) {
      const hash = created.get(nodeKeyString(k)) ?? edge.get(nodeKeyString(k));
      if (hash) next.set(nodeKeyString(k), hash);
    }
    const complete = next.size === rangeNodes(0, newSize).length;
    const newLastLeaf = rows[rows.length - 1]?.leafHash ?? lastLeafHash;
    afterCommit(tx, () => {
      frontier = complete ? { size: newSize, lastLeafHash: newLastLeaf, nodes: next } : undefined;
    });
    return rows.map((r) => r.seq);
  };

  const append = async (tx: Tx, actor: Actor, entry: AuditEntryInput): Promise<number> => (await appendBatch(tx, actor, [entry]))[0]!;

  const list = async (actor: Actor, filter: AuditFilter, limit: number, cursor?: string) => {
    requirePermission(actor, "audit:read");
    let start = filter.start;
    if (cursor !== undefined) {
      if (!/^\d{1,15}$/.test(cursor)) throw COMMON_ERRORS.VALIDATION_FAILED("cursor: not a cursor returned by this endpoint", { errors: [{ path: "cursor", message: "not a cursor returned by this endpoint" }] });
      start = Math.max(start ?? 0, Number(cursor));
    }
    const rows = await repo.list({ ...filter, start }, limit + 1);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toAuditEntry),
      next_cursor: rows.length > limit && last ? String(last.seq + 1) : null,
    };
  };

  const get = async (actor: Actor, index: number) => {
    requirePermission(actor, "audit:read");
    const row = await repo.get(index);
    if (!row) throw COMMON_ERRORS.NOT_FOUND(`no audit entry with index ${index}`);
    return toAuditEntry(row);
  };

  return { append, appendBatch, list, get };
};
export type AuditService = ReturnType<typeof auditService>;
