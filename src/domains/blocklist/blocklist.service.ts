// Blocked entities (IPs, CIDR ranges, users, API keys): creation with guardrails, deactivation,
// exact expiry, listing, and the enforcement check served from the in-memory BlockIndex.
// Writes are audited in their transaction and published to other nodes through the change feed.
import { uuidv7 } from "../../lib/ids.ts";
import { afterCommit, type Database, type Tx } from "../../db/client.ts";
import { isUniqueViolation } from "../../db/errors.ts";
import { COMMON_ERRORS, defineErrors } from "../../lib/errors.ts";
import { classifyIp, cidrContains, cidrIntersectsSpecialSpace, normalizeCidr, normalizeIp, rangesOverlap } from "../../lib/ip.ts";
import { decodeCursor, toPage, type Page } from "../../lib/pagination.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { actorName, hasPermission, requirePermission, systemActor, type Actor } from "../identity/principal.ts";
import type { BlockIndex, IndexedBlock } from "./block-index.ts";
import type { BlocklistRepo, BlockRow } from "./blocklist.repo.ts";
import type { Block, CheckQuery, CheckResult, CreateBlockInput, EntityType, ListBlocksQuery } from "./blocklist.schemas.ts";

export const BLOCKLIST_ERRORS = defineErrors({
  INVALID_BLOCK_VALUE: { status: 400, title: "Invalid block value" },
  INVALID_IP: { status: 400, title: "Invalid IP address" },
  EXPIRY_IN_PAST: { status: 400, title: "Expiry is not in the future" },
  BLOCK_NOT_FOUND: { status: 404, title: "Block not found" },
  BLOCK_EXISTS: { status: 409, title: "An active block for this value exists" },
  BLOCK_NOT_ACTIVE: { status: 409, title: "Block is not active" },
  PROTECTED_NETWORK: { status: 422, title: "Protected network" },
  CIDR_TOO_BROAD: { status: 422, title: "CIDR range too broad" },
});

export type BlocklistSettings = {
  protectedNetworks: readonly string[];
  maxPrefixV4: number;
  maxPrefixV6: number;
};

/** Tells other nodes (and this one) that a block changed; published inside the writing transaction. */
export type BlockChange = { op: "upsert" | "remove"; id: string };
export type BlockChangeFeed = { publish(tx: Tx, change: BlockChange): Promise<void> };

type Deps = {
  db: Database;
  repo: BlocklistRepo;
  audit: Pick<AuditService, "append">;
  clock: Clock;
  index: BlockIndex;
  settings: BlocklistSettings;
  changeFeed: BlockChangeFeed;
};

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const toBlock = (row: BlockRow, now: Date): Block => ({
  id: row.id,
  entity_type: row.entityType as EntityType,
  value: row.value,
  reason: row.reason,
  created_by: row.createdBy,
  created_at: row.createdAt.toISOString(),
  expires_at: row.expiresAt?.toISOString() ?? null,
  active: row.active && !(row.expiresAt && row.expiresAt.getTime() <= now.getTime()),
  deactivated_at: row.deactivatedAt?.toISOString() ?? (row.active && row.expiresAt && row.expiresAt <= now ? row.expiresAt.toISOString() : null),
  deactivated_by: row.deactivatedBy ?? (row.active && row.expiresAt && row.expiresAt <= now ? "system:expiry" : null),
  forced: row.forced,
});

const toIndexed = (row: BlockRow): IndexedBlock => ({
  id: row.id,
  type: row.entityType as EntityType,
  value: row.value,
  reason: row.reason,
  expiresAt: row.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY,
});

type Guardrail = { code: "PROTECTED_NETWORK" | "CIDR_TOO_BROAD"; detail: string };

export const blocklistService = ({ db, repo, audit, clock, index, settings, changeFeed }: Deps) => {
  const protectedNets = settings.protectedNetworks.map((text) => {
    const cidr = normalizeCidr(text) ?? normalizeCidr(`${normalizeIp(text) ?? text}/${text.includes(":") ? 128 : 32}`);
    if (!cidr) throw new Error(`blocklist.protectedNetworks: "${text}" is not an IP or CIDR`);
    return cidr.text;
  });

  const invalidValue = (message: string) =>
    BLOCKLIST_ERRORS.INVALID_BLOCK_VALUE(message, { errors: [{ path: "value", message }] });

  /** Canonical value and the guardrails it trips. */
  const normalize = (type: EntityType, raw: string): { value: string; guardrails: Guardrail[] } => {
    const guardrails: Guardrail[] = [];
    if (type === "ip") {
      const value = normalizeIp(raw);
      if (!value) throw invalidValue(`"${raw}" is not an IPv4 or IPv6 address`);
      const cls = classifyIp(value);
      if (cls !== "public") guardrails.push({ code: "PROTECTED_NETWORK", detail: `${value} is in ${cls.replace("_", "-")} address space` });
      const net = protectedNets.find((n) => cidrContains(n, value));
      if (net) guardrails.push({ code: "PROTECTED_NETWORK", detail: `${value} is inside the protected network ${net}` });
      return { value, guardrails };
    }
    if (type === "cidr") {
      const cidr = normalizeCidr(raw);
      if (!cidr) throw invalidValue(`"${raw}" is not a CIDR range such as 203.0.113.0/24 or 2001:db8::/48`);
      const max = cidr.family === 4 ? settings.maxPrefixV4 : settings.maxPrefixV6;
      if (cidr.prefix < max)
        guardrails.push({ code: "CIDR_TOO_BROAD", detail: `${cidr.text} is broader than /${max}, the broadest IPv${cidr.family} range allowed` });
      const cls = cidrIntersectsSpecialSpace(cidr.text);
      if (cls) guardrails.push({ code: "PROTECTED_NETWORK", detail: `${cidr.text} covers ${cls.replace("_", "-")} address space` });
      const net = protectedNets.find((n) => rangesOverlap(n, cidr.text));
      if (net) guardrails.push({ code: "PROTECTED_NETWORK", detail: `${cidr.text} overlaps the protected network ${net}` });
      return { value: cidr.text, guardrails };
    }
    const value = raw.trim().normalize("NFC");
    if (type === "api_key" && value.startsWith("pc_") && value.length > 20)
      throw invalidValue("this looks like a whole API key; block it by its visible prefix (e.g. pc_ab12cd34) so the secret is not stored");
    return { value, guardrails };
  };

  const recordExpiredIn = async (tx: Tx, now: Date, max: number, only?: { type: EntityType; value: string }) => {
    const expired = await repo.recordExpired(now, max, tx, only);
    const actor = systemActor("expiry");
    for (const row of expired) {
      await audit.append(tx, actor, {
        action: "blocklist.block.expired",
        target: { type: "block", id: row.id },
        after: toBlock(row, now),
      });
      await changeFeed.publish(tx, { op: "remove", id: row.id });
    }
    return expired;
  };

  /** `outer`: run inside the caller's transaction (the action workflow); the index follows after its commit. */
  const createBlock = async (actor: Actor, input: CreateBlockInput, outer?: Tx): Promise<Block> => {
    requirePermission(actor, "blocklist:write");
    const now = clock.now();
    const { value, guardrails } = normalize(input.entity_type, input.value);
    if (input.force && !hasPermission(actor.principal, "blocklist:force"))
      throw COMMON_ERRORS.FORBIDDEN("force: true needs the permission blocklist:force", { required_permission: "blocklist:force" });
    if (guardrails.length > 0 && !input.force) {
      const first = guardrails[0]!;
      throw BLOCKLIST_ERRORS[first.code](`${first.detail}; an admin may pass force: true to block it anyway`, {
        guardrails: guardrails.map((g) => g.code),
      });
    }
    const expiresAt = input.expires_at ? new Date(input.expires_at) : null;
    if (expiresAt && expiresAt.getTime() <= now.getTime())
      throw BLOCKLIST_ERRORS.EXPIRY_IN_PAST(`expires_at ${expiresAt.toISOString()} is not after now (${now.toISOString()})`, {
        errors: [{ path: "expires_at", message: "must be in the future" }],
      });
    const forced = input.force && guardrails.length > 0;
    let row: BlockRow;
    const write = async (tx: Tx) => {
      // A block that expired but was not swept yet still holds the one-active slot: record its expiry first.
      const expiredNow = await recordExpiredIn(tx, now, 10, { type: input.entity_type, value });
      // In a caller's transaction a unique violation would abort it (PostgreSQL): ask first.
      const holder = outer ? await repo.findActiveSlot(input.entity_type, value, tx) : undefined;
      if (holder) throw BLOCKLIST_ERRORS.BLOCK_EXISTS(`${input.entity_type} ${value} is already blocked by block ${holder.id}`, { existing_block_id: holder.id });
      const inserted = await repo.insert(
        {
          id: uuidv7(),
          entityType: input.entity_type,
          value,
          reason: input.reason,
          createdBy: actorName(actor),
          createdAt: now,
          expiresAt,
          active: true,
          deactivatedAt: null,
          deactivatedBy: null,
          forced,
        },
        tx,
      );
      await audit.append(tx, actor, {
        action: "blocklist.block.created",
        target: { type: "block", id: inserted.id },
        after: toBlock(inserted, now),
        details: forced ? { forced: true, overridden: guardrails.map((g) => ({ code: g.code, detail: g.detail })) } : undefined,
      });
      await changeFeed.publish(tx, { op: "upsert", id: inserted.id });
      afterCommit(tx, () => {
        for (const e of expiredNow) index.remove(e.id);
        index.upsert(toIndexed(inserted));
      });
      return inserted;
    };
    try {
      row = outer ? await write(outer) : await db.transaction(write);
    } catch (error) {
      if (outer || !isUniqueViolation(error)) throw error;
      const existing = await repo.findActiveSlot(input.entity_type, value);
      throw BLOCKLIST_ERRORS.BLOCK_EXISTS(
        `${input.entity_type} ${value} is already blocked by block ${existing?.id ?? "(just created by another request)"}`,
        { existing_block_id: existing?.id ?? null },
      );
    }
    return toBlock(row, now);
  };

  const listBlocks = async (actor: Actor, query: ListBlocksQuery): Promise<Page<Block>> => {
    requirePermission(actor, "blocklist:read");
    const now = clock.now();
    const rows = await repo.list(
      {
        type: query.type,
        active: query.active,
        q: query.q,
        createdFrom: query.created_from ? new Date(query.created_from) : undefined,
        createdTo: query.created_to ? new Date(query.created_to) : undefined,
      },
      now,
      query.limit + 1,
      decodeCursor(query.cursor),
    );
    return toPage(rows, query.limit, (r) => ({ t: r.createdAt.toISOString(), id: r.id }), (r) => toBlock(r, now));
  };

  const getBlock = async (actor: Actor, id: string): Promise<Block> => {
    requirePermission(actor, "blocklist:read");
    const row = UUID_RE.test(id) ? await repo.get(id) : undefined;
    if (!row) throw BLOCKLIST_ERRORS.BLOCK_NOT_FOUND(`no block with id ${id}`);
    return toBlock(row, clock.now());
  };

  /** `outer`: run inside the caller's transaction (the action workflow); the index follows after its commit. */
  const deactivateBlock = async (actor: Actor, id: string, reason?: string, outer?: Tx): Promise<Block> => {
    requirePermission(actor, "blocklist:write");
    const now = clock.now();
    const existing = UUID_RE.test(id) ? await repo.get(id, outer) : undefined;
    if (!existing) throw BLOCKLIST_ERRORS.BLOCK_NOT_FOUND(`no block with id ${id}`);
    const write = async (tx: Tx) => {
      const updated = await repo.deactivate(id, now, actorName(actor), tx);
      if (!updated) return undefined;
      await audit.append(tx, actor, {
        action: "blocklist.block.deactivated",
        target: { type: "block", id },
        before: toBlock(existing, now),
        after: toBlock(updated, now),
        details: reason ? { reason } : undefined,
      });
      await changeFeed.publish(tx, { op: "remove", id });
      afterCommit(tx, () => index.remove(id));
      return updated;
    };
    const row = outer ? await write(outer) : await db.transaction(write);
    if (!row) {
      const current = toBlock((await repo.get(id, outer)) ?? existing, now);
      throw BLOCKLIST_ERRORS.BLOCK_NOT_ACTIVE(
        `block ${id} is not active (deactivated ${current.deactivated_at ?? "earlier"} by ${current.deactivated_by ?? "unknown"})`,
        { block: current },
      );
    }
    return toBlock(row, now);
  };

  /**
   * What blocking (type, value) would meet, read only (the action workflow's dry-run): the canonical
   * value, the guardrails it trips, the active block already holding it and the active IP/CIDR blocks it overlaps.
   */
  const previewBlock = async (actor: Actor, type: EntityType, raw: string) => {
    requirePermission(actor, "blocklist:read");
    const now = clock.now();
    const { value, guardrails } = normalize(type, raw);
    const active = (await repo.loadActive(now)).map((r) => toBlock(r, now));
    const existing = active.find((b) => b.entity_type === type && b.value === value) ?? null;
    const asRange = (t: EntityType, v: string) => (t === "cidr" ? v : `${v}/${v.includes(":") ? 128 : 32}`);
    const overlapping =
      type === "ip" || type === "cidr"
        ? active.filter((b) => b !== existing && (b.entity_type === "ip" || b.entity_type === "cidr") && rangesOverlap(asRange(b.entity_type, b.value), asRange(type, value)))
        : [];
    return { value, guardrails, existing, overlapping };
  };

  const check = (actor: Actor, query: CheckQuery): CheckResult => {
    requirePermission(actor, "blocklist:check");
    const now = clock.now().getTime();
    const found: IndexedBlock[] = [];
    if (query.ip !== undefined) {
      const ip = normalizeIp(query.ip);
      if (!ip) throw BLOCKLIST_ERRORS.INVALID_IP(`"${query.ip}" is not an IPv4 or IPv6 address`, { errors: [{ path: "ip", message: "not an IP address" }] });
      found.push(...index.matchIp(ip, now));
    }
    if (query.user !== undefined) found.push(...index.matchValue("user", query.user.trim().normalize("NFC"), now));
    if (query.api_key !== undefined) found.push(...index.matchValue("api_key", query.api_key.trim(), now));
    return {
      blocked: found.length > 0,
      matches: found.map((b) => ({
        id: b.id,
        type: b.type,
        value: b.value,
        reason: b.reason,
        expires_at: Number.isFinite(b.expiresAt) ? new Date(b.expiresAt).toISOString() : null,
      })),
    };
  };

  /** Active blocks per entity type, from the enforcement index (the dashboard). */
  const activeCounts = (actor: Actor): Record<EntityType, number> => {
    requirePermission(actor, "blocklist:read");
    return index.counts(clock.now().getTime());
  };

  /** One IP or CIDR per line, for ipset restore scripts and nginx/HAProxy deny maps. */
  const ipFeed = (actor: Actor): string => {
    requirePermission(actor, "blocklist:check");
    const lines = [...index.ipValues(clock.now().getTime())].sort();
    return lines.length ? `${lines.join("\n")}\n` : "";
  };

  /** Records every expiry that has passed (audited as system:expiry); returns how many. */
  const sweepExpired = async (): Promise<number> => {
    let total = 0;
    for (;;) {
      const now = clock.now();
      const expired = await db.transaction((tx) => recordExpiredIn(tx, now, 500));
      for (const row of expired) index.remove(row.id);
      total += expired.length;
      if (expired.length < 500) return total;
    }
  };

  /** Loads every active block into the index (startup and after a lost change feed). */
  // Reloads run one after another, so an older snapshot can never finish after (and undo) a newer one.
  let reloads: Promise<unknown> = Promise.resolve();
  const reloadIndex = (): Promise<number> => {
    const run = reloads.then(reloadOnce, reloadOnce);
    reloads = run.catch(() => undefined);
    return run;
  };
  const reloadOnce = async (): Promise<number> => {
    index.beginReload();
    let rows: BlockRow[];
    try {
      rows = await repo.loadActive(clock.now());
    } catch (error) {
      index.abortReload();
      throw error;
    }
    index.replaceAll(rows.map(toIndexed));
    return rows.length;
  };

  /** Applies a change announced by any node (including this one; applying twice is harmless). */
  const applyChange = async (change: BlockChange): Promise<void> => {
    if (change.op === "remove") {
      index.remove(change.id);
      return;
    }
    const row = await repo.get(change.id);
    if (row && toBlock(row, clock.now()).active) index.upsert(toIndexed(row));
  };

  return { createBlock, listBlocks, getBlock, deactivateBlock, previewBlock, check, activeCounts, ipFeed, sweepExpired, reloadIndex, applyChange };
};
export type BlocklistService = ReturnType<typeof blocklistService>;
