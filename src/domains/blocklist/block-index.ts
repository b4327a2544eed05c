// The in-memory view of active blocks that answers enforcement checks without touching the database.
// Block ids are never reactivated, so a removed id is remembered (a tombstone) and any later upsert of
// it, from a stale read or a reordered notification, is ignored. During a reload, upserts that arrive
// are replayed on top of the loaded snapshot, so a change committed after the snapshot is not lost.
// IP and CIDR blocks live in an immutable IpMatcher (rebuilt whole, swapped atomically) plus a small
// overlay matcher holding changes since the last rebuild, so one new block costs a rebuild of the
// overlay only and a check right after a write sees it. Users and API keys are exact-match maps.
import { IpMatcher, type MatchEntry } from "./matcher.ts";
import type { EntityType } from "./blocklist.schemas.ts";

export type IndexedBlock = {
  id: string;
  type: EntityType;
  value: string;
  reason: string;
  /** epoch ms; Infinity when the block never expires */
  expiresAt: number;
};

const OVERLAY_LIMIT = 1024;
const TOMBSTONE_TTL_MS = 10 * 60_000;
const FOLD_DELAY_MS = 2_000;

const toMatchEntry = (block: IndexedBlock): MatchEntry & { block: IndexedBlock } => ({
  id: block.id,
  kind: block.type === "cidr" ? "cidr" : "ip",
  value: block.value,
  expiresAt: block.expiresAt,
  block,
});

const isIpType = (type: EntityType) => type === "ip" || type === "cidr";
const valueKey = (type: EntityType, value: string) => `${type}\u0000${value}`;

export class BlockIndex {
  private ipBlocks = new Map<string, IndexedBlock>();
  private base = IpMatcher.build([]);
  private baseIds = new Set<string>();
  private overlay = IpMatcher.build([]);
  private overlayBlocks = new Map<string, IndexedBlock>();
  private values = new Map<string, IndexedBlock>();
  private valueKeyById = new Map<string, string>();
  private foldTimer: NodeJS.Timeout | undefined;
  // id -> when it was removed. Only needed while a stale upsert of it could still arrive (a read or
  // notification in flight, a reload's snapshot): pruned after TOMBSTONE_TTL_MS when no reload runs.
  private tombstones = new Map<string, number>();
  private reloadDepth = 0;
  private upsertsDuringReload: IndexedBlock[] = [];

  /** Called with entries the matcher could not use (corrupt values); they are not enforced. */
  constructor(private readonly onRejected?: (rejected: readonly { id: string; value: string; reason: string }[]) => void) {}

  /** Marks the start of a reload: upserts from now until replaceAll are replayed after it. */
  beginReload(): void {
    if (this.reloadDepth++ === 0) this.upsertsDuringReload = [];
  }

  /** A reload that failed: keep what we have. */
  abortReload(): void {
    this.reloadDepth = Math.max(0, this.reloadDepth - 1);
    if (this.reloadDepth === 0) this.upsertsDuringReload = [];
  }

  /** Replaces everything (startup, or after a lost change feed). */
  replaceAll(blocks: Iterable<IndexedBlock>): void {
    const replay = this.reloadDepth > 0 ? this.upsertsDuringReload : [];
    this.reloadDepth = Math.max(0, this.reloadDepth - 1);
    if (this.reloadDepth === 0) this.upsertsDuringReload = [];
    this.ipBlocks = new Map();
    this.values = new Map();
    this.valueKeyById = new Map();
    this.overlayBlocks = new Map();
    for (const block of [...blocks, ...replay]) {
      if (this.tombstones.has(block.id)) continue;
      if (isIpType(block.type)) this.ipBlocks.set(block.id, block);
      else this.setValue(block);
    }
    this.fold();
  }

  upsert(block: IndexedBlock): void {
    if (this.tombstones.has(block.id)) return;
    if (this.reloadDepth > 0) this.upsertsDuringReload.push(block);
    if (!isIpType(block.type)) {
      this.setValue(block);
      return;
    }
    if (this.ipBlocks.has(block.id)) return;
    this.ipBlocks.set(block.id, block);
    this.overlayBlocks.set(block.id, block);
    this.overlayChanged();
  }

  remove(id: string): void {
    this.tombstones.set(id, Date.now());
    const key = this.valueKeyById.get(id);
    if (key !== undefined) {
      this.valueKeyById.delete(id);
      if (this.values.get(key)?.id === id) this.values.delete(key);
      return;
    }
    if (!this.ipBlocks.delete(id)) return;
    if (this.overlayBlocks.delete(id)) this.overlay = IpMatcher.build([...this.overlayBlocks.values()].map(toMatchEntry));
    // A removed base entry is filtered at lookup (ipBlocks no longer has it) until the next fold.
    if (this.baseIds.has(id)) this.scheduleFold();
  }

  get size(): number {
    return this.ipBlocks.size + this.values.size;
  }

  matchIp(address: string, now: number): IndexedBlock[] {
    const found: IndexedBlock[] = [];
    for (const entry of this.base.match(address, now)) {
      const block = (entry as ReturnType<typeof toMatchEntry>).block;
      if (this.ipBlocks.has(block.id)) found.push(block);
    }
    if (this.overlayBlocks.size > 0) {
      for (const entry of this.overlay.match(address, now)) found.push((entry as ReturnType<typeof toMatchEntry>).block);
    }
    return found;
  }

  matchValue(type: "user" | "api_key", value: string, now: number): IndexedBlock[] {
    const block = this.values.get(valueKey(type, value));
    return block && block.expiresAt > now ? [block] : [];
  }

  /** Active IP and CIDR values, for plain-text feeds. */
  *ipValues(now: number): Generator<string> {
    for (const block of this.ipBlocks.values()) if (block.expiresAt > now) yield block.value;
  }

  /** Active (unexpired) blocks per entity type, for the dashboard: one pass over memory, no query. */
  counts(now: number): Record<EntityType, number> {
    const out: Record<EntityType, number> = { ip: 0, cidr: 0, user: 0, api_key: 0 };
    for (const block of this.ipBlocks.values()) if (block.expiresAt > now) out[block.type]++;
    for (const block of this.values.values()) if (block.expiresAt > now) out[block.type]++;
    return out;
  }

  close(): void {
    if (this.foldTimer) clearTimeout(this.foldTimer);
    this.foldTimer = undefined;
  }

  private setValue(block: IndexedBlock): void {
    const key = valueKey(block.type, block.value);
    const previous = this.values.get(key);
    if (previous && previous.id !== block.id) this.valueKeyById.delete(previous.id);
    this.values.set(key, block);
    this.valueKeyById.set(block.id, key);
  }

  private overlayChanged(): void {
    if (this.overlayBlocks.size >= OVERLAY_LIMIT) {
      this.fold();
      return;
    }
    this.overlay = IpMatcher.build([...this.overlayBlocks.values()].map(toMatchEntry));
    this.scheduleFold();
  }

  private scheduleFold(): void {
    if (this.foldTimer) return;
    this.foldTimer = setTimeout(() => {
      this.foldTimer = undefined;
      this.fold();
    }, FOLD_DELAY_MS);
    this.foldTimer.unref();
  }

  /** Rebuilds the base matcher from every live IP block and empties the overlay. */
  private fold(): void {
    if (this.foldTimer) clearTimeout(this.foldTimer);
    this.foldTimer = undefined;
    if (this.reloadDepth === 0) {
      const cutoff = Date.now() - TOMBSTONE_TTL_MS;
      for (const [id, at] of this.tombstones) if (at < cutoff) this.tombstones.delete(id);
    }
    // Expired entries stay until the sweep removes them; the matcher ignores them at lookup.
    const live = [...this.ipBlocks.values()];
    this.base = IpMatcher.build(live.map(toMatchEntry));
    if (this.base.rejected.length) this.onRejected?.(this.base.rejected);
    this.baseIds = new Set(live.map((b) => b.id));
    this.overlayBlocks = new Map();
    this.overlay = IpMatcher.build([]);
  }
}
