// The audit domain: `append(tx, actor, entry)` is called by every service inside the transaction
// that makes the change, so a change and its audit entry commit or fail together.
import type { Tx } from "../../db/client.ts";
import { COMMON_ERRORS, validationError } from "../../lib/errors.ts";
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

export type AuditEntry = {
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

export const toAuditEntry = (row: AuditRow): AuditEntry => ({
  index: row.seq,
  occurred_at: row.occurredAt.toISOString(),
  actor: { type: row.actorType, id: row.actorId, name: row.actorName },
  action: row.action,
  target: row.targetType && row.targetId ? { type: row.targetType, id: row.targetId } : null,
  request_id: row.requestId,
  before: row.before ?? null,
  after: row.after ?? null,
  details: row.details ?? null,
});

type Deps = { repo: AuditRepo; clock: Clock };

export const auditService = ({ repo, clock }: Deps) => {
  const append = async (tx: Tx, actor: Actor, entry: AuditEntryInput): Promise<number> => {
    const who = actorIdentity(actor);
    // JSON round trip: dates become ISO strings and undefined fields vanish, as in the stored JSONB.
    const json = (v: unknown) => (v === undefined ? null : (JSON.parse(JSON.stringify(v)) as unknown));
    return repo.append(tx, {
      occurredAt: clock.now(),
      actorType: who.type,
      actorId: who.id,
      actorName: who.name,
      action: entry.action,
      targetType: entry.target?.type ?? null,
      targetId: entry.target?.id ?? null,
      requestId: actor.requestId,
      before: json(entry.before),
      after: json(entry.after),
      details: json(entry.details),
    });
  };

  const list = async (actor: Actor, filter: Omit<AuditFilter, "afterSeq">, limit: number, cursor?: string) => {
    requirePermission(actor, "audit:read");
    let afterSeq: number | undefined;
    if (cursor !== undefined) {
      afterSeq = Number(cursor);
      if (!/^\d+$/.test(cursor) || !Number.isSafeInteger(afterSeq))
        throw validationError([{ path: "cursor", message: "not a cursor returned by this endpoint" }]);
    }
    const rows = await repo.list({ ...filter, afterSeq }, limit + 1);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toAuditEntry),
      next_cursor: rows.length > limit && last ? String(last.seq) : null,
    };
  };

  const get = async (actor: Actor, index: number) => {
    requirePermission(actor, "audit:read");
    const row = await repo.get(index);
    if (!row) throw COMMON_ERRORS.NOT_FOUND(`no audit entry with index ${index}`);
    return toAuditEntry(row);
  };

  return { append, list, get };
};
export type AuditService = ReturnType<typeof auditService>;
