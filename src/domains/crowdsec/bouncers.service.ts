// Bouncers: their keys (SHA-256 stored, shown once), the X-Api-Key scheme with an in-memory cache,
// and the decisions they read: lookups answered from the blocklist's matcher plus this node's
// DecisionMirror, and streams whose delta is computed from the change sequence and the bouncer's
// stored cursor. Pull metadata (time, address, User-Agent) is buffered and written every few
// seconds, except a stream's cursor, which is written before its answer is sent.
import { randomBytes } from "node:crypto";
import type { Database, Tx } from "../../db/client.ts";
import { isUniqueViolation } from "../../db/errors.ts";
import { sha256Hex } from "../../lib/crypto.ts";
import { defineErrors } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { cidrContains, normalizeCidr, normalizeIp, type CidrInfo } from "../../lib/ip.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import type { BlockIndex } from "../blocklist/block-index.ts";
import { actorName, machinePrincipal, requirePermission, type Actor, type SystemPrincipal } from "../identity/principal.ts";
import type { BouncerRow, CrowdsecRepo } from "./crowdsec.repo.ts";
import {
  DecisionMirror,
  matchesFilter,
  parseFilter,
  serializeList,
  toEntry,
  type DecisionEntry,
  type DecisionFilter,
  type DecisionRow,
} from "./decision-feed.ts";
import { LAPI_ERRORS } from "./lapi-errors.ts";

export const CROWDSEC_ERRORS = defineErrors({
  BOUNCER_NOT_FOUND: { status: 404, title: "Bouncer not found" },
  BOUNCER_EXISTS: { status: 409, title: "A bouncer with this name exists" },
  WATCHER_NOT_FOUND: { status: 404, title: "Watcher not found" },
  WATCHER_EXISTS: { status: 409, title: "A watcher with this machine id exists" },
  WATCHER_ALREADY_VALIDATED: { status: 409, title: "Watcher already validated" },
});

/** What a bouncer may do with its key: read decisions, nothing else. */
export const BOUNCER_PERMISSIONS = ["blocklist:check"] as const;

const KEY_CACHE_TTL_MS = 10_000;
const PULL_FLUSH_MS = 5_000;
const MIRROR_REFRESH_MS = 2_000;
// A startup stream lists decisions that ended this recently in "deleted" (older ones are long gone
// from any bouncer that was running, and a fresh one has nothing to remove).
const STARTUP_DELETED_WINDOW_MS = 24 * 3_600_000;
const STARTUP_DELETED_MAX = 10_000;

export type BouncerView = {
  id: string;
  name: string;
  key_prefix: string;
  created_at: string;
  created_by: string;
  agent_name: string | null;
  agent_version: string | null;
  last_pull_at: string | null;
  last_address: string | null;
};

type Pull = { at: Date; address: string | null; agentName: string | null; agentVersion: string | null };

/** "crowdsec-firewall-bouncer/v0.0.25-debian" -> name and version; anything else is kept whole as the name. */
export const parseUserAgent = (ua: string | undefined): { agentName: string | null; agentVersion: string | null } => {
  if (!ua) return { agentName: null, agentVersion: null };
  const first = ua.trim().split(/\s+/)[0]!.slice(0, 200);
  const slash = first.indexOf("/");
  return slash > 0 ? { agentName: first.slice(0, slash), agentVersion: first.slice(slash + 1) || null } : { agentName: first || null, agentVersion: null };
};

export type LookupQuery = {
  scope?: string | undefined;
  value?: string | undefined;
  type?: string | undefined;
  ip?: string | undefined;
  range?: string | undefined;
  contains?: string | undefined;
  origins?: string | undefined;
  scenarios_containing?: string | undefined;
  scenarios_not_containing?: string | undefined;
};
export type StreamQuery = {
  startup?: string | undefined;
  scopes?: string | undefined;
  origins?: string | undefined;
  scenarios_containing?: string | undefined;
  scenarios_not_containing?: string | undefined;
  dedup?: string | undefined;
};
export type PullContext = { address: string | null; userAgent: string | undefined };

type Deps = {
  db: Database;
  repo: CrowdsecRepo;
  audit: Pick<AuditService, "append">;
  clock: Clock;
  index: BlockIndex;
  /** Tells other nodes to drop cached credentials (published in the deleting transaction). */
  changeFeed?: { publish(tx: Tx): Promise<void> };
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
};

const bouncerView = (row: BouncerRow, pending?: Pull): BouncerView => {
  const lastPull = pending && (!row.lastPullAt || pending.at > row.lastPullAt) ? pending : undefined;
  return {
    id: row.id,
    name: row.name,
    key_prefix: row.keyPrefix,
    created_at: row.createdAt.toISOString(),
    created_by: row.createdBy,
    agent_name: lastPull?.agentName ?? row.agentName,
    agent_version: lastPull?.agentName ? lastPull.agentVersion : row.agentVersion,
    last_pull_at: (lastPull?.at ?? row.lastPullAt)?.toISOString() ?? null,
    last_address: lastPull ? lastPull.address : row.lastAddress,
  };
};

const NO_FILTER: DecisionFilter = Object.freeze({});
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isTrue = (v: string | undefined) => v !== undefined && v.toLowerCase() === "true";

export const bouncersService = ({ db, repo, audit, clock, index, changeFeed, log }: Deps) => {
  // ---- keys ----
  const keyCache = new Map<string, { principal: SystemPrincipal; checkedAt: number }>();

  /** The X-Api-Key scheme: the principal of the bouncer holding `key`, or a CrowdSec-style 403. */
  const authenticate = async (key: string | undefined): Promise<SystemPrincipal> => {
    if (!key || key.length > 512) throw LAPI_ERRORS.accessForbidden();
    const hash = sha256Hex(key);
    const now = Date.now();
    const hit = keyCache.get(hash);
    if (hit && now - hit.checkedAt < KEY_CACHE_TTL_MS) return hit.principal;
    const row = await repo.bouncerByHash(hash);
    if (!row) {
      keyCache.delete(hash);
      throw LAPI_ERRORS.accessForbidden();
    }
    const principal = machinePrincipal("bouncer", row.id, row.name, [...BOUNCER_PERMISSIONS]);
    if (keyCache.size > 10_000) keyCache.clear();
    keyCache.set(hash, { principal, checkedAt: now });
    return principal;
  };

  const forgetBouncer = (id: string) => {
    for (const [hash, entry] of keyCache) if (entry.principal.machine?.id === id) keyCache.delete(hash);
    pendingPulls.delete(id);
  };

  // ---- pull bookkeeping (never on the request's critical path for lookups) ----
  const pendingPulls = new Map<string, Pull>();
  const notePull = (bouncerId: string, ctx: PullContext) => {
    const previous = pendingPulls.get(bouncerId);
    const at = clock.now();
    // Same agent and address within a second: nothing new worth a write.
    if (previous && at.getTime() - previous.at.getTime() < 1000 && previous.address === ctx.address) return;
    pendingPulls.set(bouncerId, { at, address: ctx.address, ...parseUserAgent(ctx.userAgent) });
  };
  const flushPulls = async () => {
    if (pendingPulls.size === 0) return;
    const batch = [...pendingPulls];
    pendingPulls.clear();
    for (const [id, pull] of batch) await repo.recordPull(id, pull);
  };

  // ---- the mirror ----
  const mirror = new DecisionMirror();
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  const refreshOnce = async () => {
    const now = clock.now();
    if (!mirror.loaded) {
      const r = await repo.liveDecisions(now);
      mirror.apply(r.live, r.seq, now.getTime());
    } else {
      const r = await repo.decisionsChangedSince(mirror.seq);
      mirror.apply(r.changed, r.seq, now.getTime());
    }
  };
  /** Brings the mirror up to everything committed before this call (coalesces concurrent callers). */
  const catchUp = (): Promise<void> => {
    if (!running) {
      running = refreshOnce().finally(() => {
        running = null;
      });
      return running;
    }
    queued ??= running.catch(() => undefined).then(() => {
      queued = null;
      return catchUp();
    });
    return queued;
  };

  const entriesFor = async (blockIds: readonly string[]): Promise<DecisionEntry[]> => {
    let out = blockIds.map((id) => mirror.get(id));
    if (out.some((e) => e === undefined)) {
      // A block this node's index already has but the mirror has not seen yet: catch up once.
      await catchUp();
      out = blockIds.map((id) => mirror.get(id));
    }
    return out.filter((e): e is DecisionEntry => e !== undefined);
  };

  const invalidValue = (what: string, value: string) => LAPI_ERRORS.badRequest(`invalid ${what}: ${JSON.stringify(value.slice(0, 100))}`);

  // ---- GET /v1/decisions ----
  const rangeOf = (e: DecisionEntry): CidrInfo | null =>
    e.scope === "Range" ? normalizeCidr(e.value) : normalizeCidr(`${e.value}/${e.value.includes(":") ? 128 : 32}`);
  const fullPrefix = (c: CidrInfo) => (c.family === 4 ? 32 : 128);

  const decisionsByIp = async (ip: string, contains: boolean, now: number): Promise<DecisionEntry[]> => {
    const blocks = index.matchIp(ip, now);
    if (blocks.length === 0) return [];
    const entries = await entriesFor(blocks.map((b) => b.id));
    if (contains) return entries;
    // contained in a single address: only decisions on exactly that address
    return entries.filter((e) => {
      const r = rangeOf(e);
      return r !== null && r.prefix === fullPrefix(r);
    });
  };

  const decisionsByRange = async (range: CidrInfo, contains: boolean, now: number): Promise<DecisionEntry[]> => {
    if (contains) {
      const blocks = index.matchIp(range.network, now);
      if (blocks.length === 0) return [];
      return (await entriesFor(blocks.map((b) => b.id))).filter((e) => {
        const r = rangeOf(e);
        return r !== null && r.family === range.family && r.prefix <= range.prefix;
      });
    }
    await catchUp();
    const out: DecisionEntry[] = [];
    for (const e of mirror.values()) {
      if (e.expiresAt <= now) continue;
      const r = rangeOf(e);
      if (r && r.family === range.family && r.prefix >= range.prefix && cidrContains(range, r)) out.push(e);
    }
    return out;
  };

  /** Live decisions matching a /v1/decisions query (or one decision id), at `now`. */
  const findDecisions = async (q: LookupQuery & { decisionId?: number }, now = clock.now().getTime()): Promise<DecisionEntry[]> => {
    if (q.decisionId !== undefined) {
      await catchUp();
      for (const e of mirror.values()) if (e.id === q.decisionId && e.expiresAt > now) return [e];
      return [];
    }
    // The hot path (a bare ?ip=) allocates no filter.
    const filter =
      q.origins === undefined && q.scenarios_containing === undefined && q.scenarios_not_containing === undefined && q.type === undefined ? NO_FILTER : parseFilter(q);
    const contains = q.contains === undefined || q.contains === "" || isTrue(q.contains);
    let ip = q.ip;
    let range = q.range;
    const scope = q.scope?.toLowerCase();
    if (q.value !== undefined && q.value !== "") {
      if (scope === "ip" || scope === undefined) ip ??= q.value;
      else if (scope === "range") range ??= q.value;
      else return [];
    }
    let found: DecisionEntry[];
    if (ip !== undefined && ip !== "") {
      const canonical = normalizeIp(ip);
      if (!canonical) throw invalidValue("ip", ip);
      found = await decisionsByIp(canonical, contains, now);
    } else if (range !== undefined && range !== "") {
      const asIp = normalizeIp(range);
      const cidr = normalizeCidr(range) ?? (asIp ? normalizeCidr(`${asIp}/${asIp.includes(":") ? 128 : 32}`) : null);
      if (!cidr) throw invalidValue("range", range);
      found = await decisionsByRange(cidr, contains, now);
    } else {
      await catchUp();
      const scoped: DecisionFilter = scope === "ip" || scope === "range" ? { ...filter, scopes: new Set([scope]) } : scope ? { ...filter, typeMatches: false } : filter;
      return mirror.live(now, scoped);
    }
    return found.filter((e) => e.expiresAt > now && matchesFilter(e, filter));
  };

  /** The JSON of GET /v1/decisions: an array, or null when nothing matches (as CrowdSec answers). */
  const lookup = async (actor: Actor, q: LookupQuery, ctx: PullContext): Promise<string> => {
    requirePermission(actor, "blocklist:check");
    const bouncerId = actor.principal.kind === "system" ? actor.principal.machine?.id : undefined;
    if (bouncerId) notePull(bouncerId, ctx);
    const now = clock.now().getTime();
    return listOrNull(await findDecisions(q, now), now);
  };
  const listOrNull = (entries: DecisionEntry[], now: number) => (entries.length ? serializeList(entries, now) : "null");

  // ---- GET /v1/decisions/stream ----
  const endedEntry = (row: DecisionRow) => toEntry({ ...row, expires_at: row.deleted_at ?? row.expires_at });

  /** The JSON of GET /v1/decisions/stream; moves this bouncer's cursor (HEAD never calls this). */
  const stream = async (actor: Actor, q: StreamQuery, ctx: PullContext): Promise<string> => {
    requirePermission(actor, "blocklist:check");
    const bouncerId = actor.principal.kind === "system" ? actor.principal.machine?.id : undefined;
    const row = bouncerId ? await repo.bouncerById(bouncerId) : undefined;
    if (!row) throw LAPI_ERRORS.accessForbidden();
    const filter = parseFilter(q, "ip,range");
    const nowDate = clock.now();
    const now = nowDate.getTime();
    let fresh: DecisionEntry[];
    let ended: DecisionEntry[];
    let seq: number;
    if (isTrue(q.startup) || row.streamSeq === null || row.streamAt === null) {
      await catchUp();
      // Read synchronously after the catch-up: the list and the cursor describe the same snapshot.
      seq = mirror.seq;
      fresh = mirror.live(now, filter);
      ended = isTrue(q.startup)
        ? (await repo.decisionsEnded(new Date(now - STARTUP_DELETED_WINDOW_MS), nowDate, STARTUP_DELETED_MAX)).map(endedEntry).filter((e) => matchesFilter(e, filter))
        : [];
    } else {
      const delta = await repo.decisionsDelta(row.streamSeq, row.streamAt, nowDate);
      seq = delta.seq;
      fresh = delta.new.map(toEntry).filter((e) => matchesFilter(e, filter));
      ended = delta.deleted.map(endedEntry).filter((e) => matchesFilter(e, filter));
    }
    const body = `{"new":${serializeList(fresh, now)},"deleted":${serializeList(ended, now)}}`;
    pendingPulls.delete(row.id);
    await repo.recordPull(row.id, { at: nowDate, address: ctx.address, ...parseUserAgent(ctx.userAgent), cursor: { seq, at: nowDate } });
    return body;
  };

  /** POST /v1/usage-metrics: kept as sent (bounded by the body limit), for operators to read. */
  const recordUsageMetrics = async (actor: Actor, body: unknown): Promise<void> => {
    requirePermission(actor, "blocklist:check");
    const machine = actor.principal.kind === "system" ? actor.principal.machine : undefined;
    const row = { receivedAt: clock.now(), machineType: machine?.type ?? "unknown", machineId: machine?.id ?? "unknown", body: body ?? null };
    await db.transaction(async (tx) => {
      const id = await repo.insertUsageMetrics(row, tx);
      await audit.append(tx, actor, {
        action: "crowdsec.usage_metrics.stored",
        target: { type: "crowdsec_usage_metrics", id: String(id) },
        details: { machine_type: row.machineType, machine_id: row.machineId, bytes: JSON.stringify(row.body).length },
      });
    });
  };

  // ---- management (admin API and CLI) ----
  const findBouncer = async (idOrName: string): Promise<BouncerRow> => {
    const row = UUID_RE.test(idOrName) ? await repo.bouncerById(idOrName) : await repo.bouncerByName(idOrName);
    if (!row) throw CROWDSEC_ERRORS.BOUNCER_NOT_FOUND(`no bouncer ${JSON.stringify(idOrName)}`);
    return row;
  };

  const createBouncer = async (actor: Actor, input: { name: string }): Promise<BouncerView & { key: string }> => {
    requirePermission(actor, "enforcement:manage");
    // Hex only: the key goes into YAML, nginx and shell configs unquoted.
    const key = `pcb_${randomBytes(24).toString("hex")}`;
    const now = clock.now();
    try {
      const row = await db.transaction(async (tx) => {
        const inserted = await repo.insertBouncer(
          {
            id: uuidv7(),
            name: input.name,
            keyHash: sha256Hex(key),
            keyPrefix: key.slice(0, 12),
            createdAt: now,
            createdBy: actorName(actor),
            agentName: null,
            agentVersion: null,
            lastPullAt: null,
            lastAddress: null,
            streamSeq: null,
            streamAt: null,
          },
          tx,
        );
        await audit.append(tx, actor, { action: "crowdsec.bouncer.created", target: { type: "crowdsec_bouncer", id: inserted.id }, after: bouncerView(inserted) });
        return inserted;
      });
      return { ...bouncerView(row), key };
    } catch (error) {
      if (isUniqueViolation(error)) throw CROWDSEC_ERRORS.BOUNCER_EXISTS(`a bouncer named ${JSON.stringify(input.name)} exists`);
      throw error;
    }
  };

  const listBouncers = async (actor: Actor): Promise<BouncerView[]> => {
    requirePermission(actor, "enforcement:manage");
    return (await repo.listBouncers()).map((row) => bouncerView(row, pendingPulls.get(row.id)));
  };

  const deleteBouncer = async (actor: Actor, idOrName: string): Promise<BouncerView> => {
    requirePermission(actor, "enforcement:manage");
    const existing = await findBouncer(idOrName);
    const row = await db.transaction(async (tx) => {
      const deleted = await repo.deleteBouncer(existing.id, tx);
      if (!deleted) throw CROWDSEC_ERRORS.BOUNCER_NOT_FOUND(`no bouncer ${JSON.stringify(idOrName)}`);
      await audit.append(tx, actor, { action: "crowdsec.bouncer.deleted", target: { type: "crowdsec_bouncer", id: deleted.id }, before: bouncerView(deleted) });
      await changeFeed?.publish(tx);
      return deleted;
    });
    forgetBouncer(row.id);
    return bouncerView(row);
  };

  // ---- background ----
  let flushTimer: NodeJS.Timeout | undefined;
  let refreshTimer: NodeJS.Timeout | undefined;
  const start = async () => {
    await catchUp();
    flushTimer = setInterval(() => {
      flushPulls().catch((err: unknown) => log?.error({ err }, "recording bouncer pulls failed"));
    }, PULL_FLUSH_MS);
    flushTimer.unref();
    refreshTimer = setInterval(() => {
      catchUp()
        .then(() => mirror.prune(clock.now().getTime()))
        .catch((err: unknown) => log?.warn({ err }, "refreshing the CrowdSec decision mirror failed"));
    }, MIRROR_REFRESH_MS);
    refreshTimer.unref();
  };
  const stop = async () => {
    clearInterval(flushTimer);
    clearInterval(refreshTimer);
    await flushPulls().catch(() => {});
    await running?.catch(() => {});
  };

  /** Another node deleted a bouncer (or a cache must be dropped): keys are checked again. */
  const invalidateCache = () => keyCache.clear();

  return { invalidateCache, authenticate, lookup, findDecisions, stream, recordUsageMetrics, createBouncer, listBouncers, deleteBouncer, start, stop, catchUp, flushPulls, mirror };
};
export type BouncersService = ReturnType<typeof bouncersService>;
