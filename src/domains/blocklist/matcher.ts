// In-memory enforcement lookup: which blocklist entries cover a client address, answered without the database.
// Built once from a snapshot and never mutated, so callers swap whole instances and a lookup never sees half a change.
import { isV4MappedWords, parseIpv4ToUint32, parseIpv6ToWords } from "../../lib/ip.ts";

export type MatchEntry = {
  id: string;
  kind: "ip" | "cidr";
  /** canonical text from src/lib/ip.ts (normalizeIp / normalizeCidr().text) */
  value: string;
  /** epoch ms; Infinity = never */
  expiresAt: number;
};

/** An entry the builder could not use; it is left out of the matcher instead of failing the whole build. */
export type RejectedEntry = { id: string; value: string; reason: string };

/*
 * Layout. CIDR blocks are either nested or disjoint, so a sweep over blocks sorted by (start asc, size desc)
 * keeps the blocks covering the sweep position on a stack, innermost on top. Each time the stack changes we
 * close an elementary segment [start, end] and copy the stack (top first = most specific first) into the flat
 * `list`. Address ranges no block covers get no segment, so a lookup also checks `address <= end`.
 *
 * Both families:
 *   offsets     Uint32Array(segments + 1): segment i's entries are list[offsets[i] .. offsets[i+1])
 *   list        Int32Array of entry indices
 *   expiry      Float64Array(2 * segments): exact min and max expiresAt of segment i's entries. isBlocked is
 *               "max > now" and never reads list or per-entry data; match skips per-entry expiry reads when
 *               "min > now".
 *   buckets     Uint32Array(2^bits + 1): buckets[h] = first segment whose start's top `bits` bits are >= h,
 *               so the binary search only spans the segments starting in the address's bucket. bits is 16
 *               for IPv4 (startLow depends on it); IPv6 tables under 4096 segments use 8, which keeps
 *               rebuilding a small overlay matcher cheap.
 * IPv6:
 *   starts/ends Uint32Array, 4 big-endian words per segment, compared lexicographically.
 * IPv4 (tuned for the hot path, where each dependent cache miss costs more than the arithmetic):
 *   startLow    Uint16Array: low 16 bits of each start; with buckets that is the whole start, at half the
 *               bytes, so the search mostly stays in L2 even at 1M entries.
 *   hot         Uint32Array(2 * segments): [end, max expiry in whole seconds rounded up], one cache line
 *               per lookup instead of separate end and expiry reads. The coarse expiry decides unless `now`
 *               falls in the same second as the max expiry; then the exact value in `expiry` decides.
 *
 * Memory is the sum over segments of the nesting depth: cheap for the usual mostly-disjoint lists, but wide
 * blocks (/9 ... /12) over many single IPs multiply it (the random 1M-entry bench is that worst case).
 */
type Table = {
  readonly count: number;
  readonly offsets: Uint32Array;
  readonly list: Int32Array;
  readonly expiry: Float64Array;
  readonly buckets: Uint32Array;
  /** 32 - bucket bits: the bucket of a start (or address) is its first word >>> bucketShift */
  readonly bucketShift: number;
};

type V4Table = Table & { readonly startLow: Uint16Array; readonly hot: Uint32Array };

type V6Table = Table & { readonly starts: Uint32Array; readonly ends: Uint32Array };

// Coarse expiry codes in V4Table.hot.
const COARSE_NEVER = 0xffffffff;
const COARSE_EXACT = 0;

// Hot-path scratch for the parsed IPv6 address; lookups are synchronous, so one per module is enough.
const addr6 = new Uint32Array(4);

export class IpMatcher {
  /** Number of usable entries (rejected ones excluded), expired or not. */
  readonly size: number;
  /** Entries left out because their value or expiry could not be read; callers should log these. */
  readonly rejected: readonly RejectedEntry[];

  readonly #entries: readonly MatchEntry[];
  // Copied at build so a caller mutating its entry objects cannot change decisions of a built matcher.
  readonly #expiresAt: Float64Array;
  readonly #v4: V4Table;
  readonly #v6: V6Table;

  private constructor(entries: readonly MatchEntry[], expiresAt: Float64Array, v4: V4Table, v6: V6Table, rejected: readonly RejectedEntry[]) {
    this.#entries = entries;
    this.#expiresAt = expiresAt;
    this.#v4 = v4;
    this.#v6 = v6;
    this.size = entries.length;
    this.rejected = rejected;
  }

  /**
   * Builds a matcher. Entries whose value does not parse (or whose kind disagrees with it, or whose expiresAt is
   * NaN) are skipped and listed in `rejected`: one bad row must not take enforcement of every other block down.
   * CIDR values with host bits set are treated as their network; IPv4-mapped IPv6 values fold to IPv4.
   */
  static build(entries: readonly MatchEntry[]): IpMatcher {
    const n = entries.length;
    const rejected: RejectedEntry[] = [];
    const kept: MatchEntry[] = [];
    const expiresAt = new Float64Array(n);
    const r4 = new RangeSet(1, n);
    const r6 = new RangeSet(4, n);
    const w = new Uint32Array(4);

    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      const problem = parseEntry(e, w);
      if (problem !== null) {
        rejected.push({ id: String(e.id), value: String(e.value), reason: problem });
        continue;
      }
      const k = kept.length;
      kept.push(e);
      expiresAt[k] = e.expiresAt;
      // parseEntry leaves the family in parsedFamily, the prefix in parsedPrefix and the address in w.
      if (parsedFamily === 4) r4.add(w, 3, parsedPrefix, k);
      else r6.add(w, 0, parsedPrefix, k);
    }

    const finalExpiry = kept.length === n ? expiresAt : expiresAt.slice(0, kept.length);
    const s4 = sweep(r4, finalExpiry);
    const s6 = sweep(r6, finalExpiry);
    return new IpMatcher(Object.freeze(kept), finalExpiry, toV4Table(s4), toV6Table(s6), Object.freeze(rejected));
  }

  /**
   * Every unexpired entry covering the address (an equal IP or a containing CIDR), most specific first, ties in
   * build order. Invalid address text gives []. An entry is expired when expiresAt <= now.
   */
  match(address: string, now: number): MatchEntry[] {
    const out: MatchEntry[] = [];
    let table: Table;
    let i: number;
    const a = parseIpv4ToUint32(address);
    if (a >= 0) {
      table = this.#v4;
      i = findV4(this.#v4, a);
    } else {
      if (!parseIpv6ToWords(address, addr6, 0)) return out;
      if (isV4MappedWords(addr6)) {
        table = this.#v4;
        i = findV4(this.#v4, addr6[3]!);
      } else {
        table = this.#v6;
        i = findV6(this.#v6, addr6);
      }
    }
    if (i < 0) return out;
    const { offsets, list, expiry } = table;
    if (!(expiry[2 * i + 1]! > now)) return out;
    const entries = this.#entries;
    const end = offsets[i + 1]!;
    if (expiry[2 * i]! > now) {
      for (let p = offsets[i]!; p < end; p++) out.push(entries[list[p]!]!);
      return out;
    }
    const expiresAt = this.#expiresAt;
    for (let p = offsets[i]!; p < end; p++) {
      const idx = list[p]!;
      if (expiresAt[idx]! > now) out.push(entries[idx]!);
    }
    return out;
  }

  /** Whether any unexpired entry covers the address; allocation-free for IPv4 and IPv6 text. */
  isBlocked(address: string, now: number): boolean {
    const a = parseIpv4ToUint32(address);
    if (a >= 0) return v4Blocked(this.#v4, a, now);
    if (!parseIpv6ToWords(address, addr6, 0)) return false;
    if (isV4MappedWords(addr6)) return v4Blocked(this.#v4, addr6[3]!, now);
    const t = this.#v6;
    const i = findV6(t, addr6);
    return i >= 0 && t.expiry[2 * i + 1]! > now;
  }

  /** Bytes held in typed arrays plus the entry reference array (entry objects themselves are the caller's). */
  memoryBytes(): number {
    const t4 = this.#v4;
    const t6 = this.#v6;
    return (
      this.#expiresAt.byteLength +
      this.#entries.length * 8 +
      tableBytes(t4) +
      t4.startLow.byteLength +
      t4.hot.byteLength +
      tableBytes(t6) +
      t6.starts.byteLength +
      t6.ends.byteLength
    );
  }

  /** Segment counts and total list length per family, for capacity planning and the bench. */
  stats(): { v4Segments: number; v4ListLength: number; v6Segments: number; v6ListLength: number } {
    return {
      v4Segments: this.#v4.count,
      v4ListLength: this.#v4.list.length,
      v6Segments: this.#v6.count,
      v6ListLength: this.#v6.list.length,
    };
  }
}

export function matcherMemoryBytes(m: IpMatcher): number {
  return m.memoryBytes();
}

function tableBytes(t: Table): number {
  // Empty tables share one bucket array, so it is not this matcher's memory.
  const buckets = t.count === 0 ? 0 : t.buckets.byteLength;
  return t.offsets.byteLength + t.list.byteLength + t.expiry.byteLength + buckets;
}

// ---------------------------------------------------------------------------------------------------------------
// Lookup

/** Index of the IPv4 segment containing `a`, or -1. */
function findV4(t: V4Table, a: number): number {
  const h = a >>> 16;
  const low = a & 0xffff;
  const startLow = t.startLow;
  let lo = t.buckets[h]!;
  let hi = t.buckets[h + 1]!;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (startLow[mid]! <= low) lo = mid + 1;
    else hi = mid;
  }
  // lo - 1 may be the last segment of an earlier bucket that runs into this one.
  const i = lo - 1;
  if (i < 0 || t.hot[2 * i]! < a) return -1;
  return i;
}

function v4Blocked(t: V4Table, a: number, now: number): boolean {
  const i = findV4(t, a);
  if (i < 0) return false;
  const c = t.hot[2 * i + 1]!;
  if (c === COARSE_NEVER) return Infinity > now;
  // c encodes max expiry in ((c - 1) * 1000, c * 1000].
  if (c !== COARSE_EXACT) {
    if (now <= (c - 1) * 1000) return true;
    if (now >= c * 1000) return false;
  }
  return t.expiry[2 * i + 1]! > now;
}

/** Index of the IPv6 segment containing the address in a[0..3], or -1. */
function findV6(t: V6Table, a: Uint32Array): number {
  const starts = t.starts;
  const a0 = a[0]!;
  const a1 = a[1]!;
  const a2 = a[2]!;
  const a3 = a[3]!;
  const h = a0 >>> t.bucketShift;
  let lo = t.buckets[h]!;
  let hi = t.buckets[h + 1]!;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const o = mid * 4;
    const s0 = starts[o]!;
    let le: boolean;
    if (s0 !== a0) le = s0 < a0;
    else {
      const s1 = starts[o + 1]!;
      if (s1 !== a1) le = s1 < a1;
      else {
        const s2 = starts[o + 2]!;
        le = s2 !== a2 ? s2 < a2 : starts[o + 3]! <= a3;
      }
    }
    if (le) lo = mid + 1;
    else hi = mid;
  }
  const i = lo - 1;
  if (i < 0) return -1;
  const ends = t.ends;
  const o = i * 4;
  const e0 = ends[o]!;
  if (e0 !== a0) return e0 > a0 ? i : -1;
  const e1 = ends[o + 1]!;
  if (e1 !== a1) return e1 > a1 ? i : -1;
  const e2 = ends[o + 2]!;
  if (e2 !== a2) return e2 > a2 ? i : -1;
  return ends[o + 3]! >= a3 ? i : -1;
}

// ---------------------------------------------------------------------------------------------------------------
// Build

// parseEntry's second result channel; avoids allocating a result object per entry at 1M entries.
let parsedFamily: 4 | 6 = 4;
let parsedPrefix = 0;

/**
 * Reads one entry into w (IPv6: four words; IPv4: w[3]) plus parsedFamily/parsedPrefix, with host bits not yet
 * cleared. Returns null on success or the reason the entry is unusable.
 */
function parseEntry(e: MatchEntry, w: Uint32Array): string | null {
  if (typeof e.expiresAt !== "number" || Number.isNaN(e.expiresAt)) return "expiresAt is not a number";
  const value = e.value;
  if (typeof value !== "string") return "value is not a string";
  const slash = value.indexOf("/");
  let prefix: number;
  let addressText: string;
  if (e.kind === "ip") {
    if (slash >= 0) return 'kind "ip" with a CIDR value';
    addressText = value;
    prefix = -1;
  } else if (e.kind === "cidr") {
    if (slash < 0) return 'kind "cidr" without a prefix';
    addressText = value.slice(0, slash);
    prefix = parsePrefix(value, slash + 1);
    if (prefix < 0) return "bad prefix length";
  } else {
    return `unknown kind ${JSON.stringify(e.kind)}`;
  }

  const v4 = parseIpv4ToUint32(addressText);
  if (v4 >= 0) {
    if (prefix < 0) prefix = 32;
    if (prefix > 32) return "prefix length out of range";
    w[3] = v4;
    parsedFamily = 4;
  } else if (parseIpv6ToWords(addressText, w, 0)) {
    if (prefix < 0) prefix = 128;
    if (prefix > 128) return "prefix length out of range";
    if (isV4MappedWords(w) && prefix >= 96) {
      prefix -= 96;
      parsedFamily = 4;
    } else {
      parsedFamily = 6;
    }
  } else {
    return "not an IP address";
  }
  parsedPrefix = prefix;
  return null;
}

// Same rule as normalizeCidr: decimal digits, no leading zero, at most three digits.
function parsePrefix(text: string, from: number): number {
  const n = text.length - from;
  if (n <= 0 || n > 3) return -1;
  if (n > 1 && text.charCodeAt(from) === 0x30) return -1;
  let v = 0;
  for (let i = from; i < text.length; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

function maskForBits(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (-1 << (32 - bits)) >>> 0;
}

/** One family's parsed ranges: W-word first/last keys, prefix length and entry index, in entry order. */
class RangeSet {
  readonly W: 1 | 4;
  readonly first: Uint32Array;
  readonly last: Uint32Array;
  readonly prefix: Uint8Array;
  readonly entry: Int32Array;
  count = 0;

  constructor(W: 1 | 4, capacity: number) {
    this.W = W;
    this.first = new Uint32Array(capacity * W);
    this.last = new Uint32Array(capacity * W);
    this.prefix = new Uint8Array(capacity);
    this.entry = new Int32Array(capacity);
  }

  /** Adds the block w[from..from+W) / prefix, clearing host bits. */
  add(w: Uint32Array, from: number, prefix: number, entry: number): void {
    const W = this.W;
    const o = this.count * W;
    for (let j = 0; j < W; j++) {
      const mask = maskForBits(prefix - 32 * j);
      const v = w[from + j]!;
      this.first[o + j] = (v & mask) >>> 0;
      this.last[o + j] = (v | ~mask) >>> 0;
    }
    this.prefix[this.count] = prefix;
    this.entry[this.count] = entry;
    this.count++;
  }
}

/**
 * Range indices ordered by (start asc, prefix asc = wider first, entry desc). Wider-first puts containers
 * lower on the sweep stack; entry-desc makes the earlier of two identical ranges end up on top, so it is
 * reported first. LSD radix on 16-bit digits: stable, so seeding with entry-desc order settles the last key.
 */
function sortRanges(r: RangeSet): Int32Array {
  const m = r.count;
  const W = r.W;
  const { first, prefix } = r;
  let order = new Int32Array(m);
  for (let i = 0; i < m; i++) order[i] = m - 1 - i;
  if (m < 2048) {
    // Range indices follow entry order, so y - x is "entry desc".
    return order.sort((x, y) => {
      for (let j = 0; j < W; j++) {
        const d = first[x * W + j]! - first[y * W + j]!;
        if (d !== 0) return d;
      }
      return prefix[x]! - prefix[y]! || y - x;
    });
  }
  let tmp = new Int32Array(m);
  const digits = new Uint16Array(m);
  const counts = new Uint32Array(65536);
  // Least significant key first: prefix, then each word's low and high half from the last word to the first.
  for (let pass = -1; pass < 2 * W; pass++) {
    if (pass < 0) {
      for (let i = 0; i < m; i++) digits[i] = prefix[i]!;
    } else {
      const word = W - 1 - (pass >> 1);
      const shift = pass & 1 ? 16 : 0;
      for (let i = 0; i < m; i++) digits[i] = (first[i * W + word]! >>> shift) & 0xffff;
    }
    counts.fill(0);
    for (let i = 0; i < m; i++) counts[digits[i]!]!++;
    if (counts[digits[0]!] === m) continue; // every key has the same digit: the pass would not move anything
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < m; i++) {
      const idx = order[i]!;
      tmp[counts[digits[idx]!]!++] = idx;
    }
    const swap = order;
    order = tmp;
    tmp = swap;
  }
  return order;
}

class GrowU32 {
  data: Uint32Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Uint32Array(Math.max(16, capacity));
  }
  reserve(extra: number): void {
    if (this.length + extra <= this.data.length) return;
    let cap = this.data.length * 2;
    while (cap < this.length + extra) cap *= 2;
    const next = new Uint32Array(cap);
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  trimmed(): Uint32Array {
    return this.data.slice(0, this.length);
  }
}

class GrowI32 {
  data: Int32Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Int32Array(Math.max(16, capacity));
  }
  reserve(extra: number): void {
    if (this.length + extra <= this.data.length) return;
    let cap = this.data.length * 2;
    while (cap < this.length + extra) cap *= 2;
    const next = new Int32Array(cap);
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  trimmed(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

class GrowF64 {
  data: Float64Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Float64Array(Math.max(16, capacity));
  }
  reserve(extra: number): void {
    if (this.length + extra <= this.data.length) return;
    let cap = this.data.length * 2;
    while (cap < this.length + extra) cap *= 2;
    const next = new Float64Array(cap);
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  trimmed(): Float64Array {
    return this.data.slice(0, this.length);
  }
}

type Segments = Table & { readonly W: 1 | 4; readonly starts: Uint32Array; readonly ends: Uint32Array };

/** Sweep state; a class rather than closures so the hot fields stay in one object the JIT can keep in shape. */
class Sweeper {
  readonly W: 1 | 4;
  readonly r: RangeSet;
  readonly expiresAt: Float64Array;
  readonly starts: GrowU32;
  readonly ends: GrowU32;
  readonly offsets: GrowU32;
  readonly list: GrowI32;
  readonly expiry: GrowF64;
  readonly stack: Int32Array;
  sp = 0;
  /** first address not yet assigned to a segment */
  readonly cursor: Uint32Array;
  /** set once the cursor has run past the top of the address space */
  cursorDone = false;

  constructor(r: RangeSet, expiresAt: Float64Array) {
    const W = r.W;
    const m = r.count;
    this.W = W;
    this.r = r;
    this.expiresAt = expiresAt;
    this.starts = new GrowU32(m * 2 * W);
    this.ends = new GrowU32(m * 2 * W);
    this.offsets = new GrowU32(m * 2 + 1);
    this.offsets.length = 1;
    this.list = new GrowI32(m * 2);
    this.expiry = new GrowF64(m * 4);
    this.stack = new Int32Array(m);
    this.cursor = new Uint32Array(W);
  }

  /** Closes the segment [cursor, keys[ki..]] covered by the current stack. */
  emit(keys: Uint32Array, ki: number): void {
    const W = this.W;
    const starts = this.starts;
    const ends = this.ends;
    starts.reserve(W);
    ends.reserve(W);
    for (let j = 0; j < W; j++) {
      starts.data[starts.length++] = this.cursor[j]!;
      ends.data[ends.length++] = keys[ki + j]!;
    }
    const sp = this.sp;
    const list = this.list;
    list.reserve(sp);
    const data = list.data;
    let len = list.length;
    let min = Infinity;
    let max = -Infinity;
    const stack = this.stack;
    const entry = this.r.entry;
    const expiresAt = this.expiresAt;
    for (let s = sp - 1; s >= 0; s--) {
      const k = entry[stack[s]!]!;
      data[len++] = k;
      const x = expiresAt[k]!;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    list.length = len;
    this.expiry.reserve(2);
    this.expiry.data[this.expiry.length++] = min;
    this.expiry.data[this.expiry.length++] = max;
    this.offsets.reserve(1);
    this.offsets.data[this.offsets.length++] = len;
  }

  /** Closes every stacked range that ends before limit[li..] (all of them when limit is null). */
  popUntil(limit: Uint32Array | null, li: number): void {
    const W = this.W;
    const last = this.r.last;
    while (this.sp > 0) {
      const top = this.stack[this.sp - 1]!;
      if (limit !== null && compareKeys(W, last, top * W, limit, li) >= 0) break;
      if (!this.cursorDone && compareKeys(W, this.cursor, 0, last, top * W) <= 0) {
        this.emit(last, top * W);
        if (!increment(W, last, top * W, this.cursor)) this.cursorDone = true;
      }
      this.sp--;
    }
  }

  push(ri: number, scratch: Uint32Array): void {
    const W = this.W;
    const first = this.r.first;
    this.popUntil(first, ri * W);
    if (this.sp > 0 && compareKeys(W, this.cursor, 0, first, ri * W) < 0) {
      decrement(W, first, ri * W, scratch);
      this.emit(scratch, 0);
    }
    for (let j = 0; j < W; j++) this.cursor[j] = first[ri * W + j]!;
    this.cursorDone = false;
    this.stack[this.sp++] = ri;
  }
}

function compareKeys(W: number, a: Uint32Array, ai: number, b: Uint32Array, bi: number): number {
  for (let j = 0; j < W; j++) {
    const x = a[ai + j]!;
    const y = b[bi + j]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** dst = src[si..] + 1; false on wrap-around past the top of the address space. */
function increment(W: number, src: Uint32Array, si: number, dst: Uint32Array): boolean {
  let carry = 1;
  for (let j = W - 1; j >= 0; j--) {
    const v = src[si + j]! + carry;
    dst[j] = v >>> 0;
    carry = v > 0xffffffff ? 1 : 0;
  }
  return carry === 0;
}

/** dst = src[si..] - 1; callers guarantee src > 0. */
function decrement(W: number, src: Uint32Array, si: number, dst: Uint32Array): void {
  let borrow = 1;
  for (let j = W - 1; j >= 0; j--) {
    const v = src[si + j]! - borrow;
    dst[j] = v >>> 0;
    borrow = v < 0 ? 1 : 0;
  }
}

/** Elementary segments of one family. Relies on CIDR ranges being nested or disjoint (the stack invariant). */
// Shared by every table with no segments; nothing writes bucket tables after build.
const EMPTY_BUCKETS_16 = new Uint32Array(65537);
const EMPTY_BUCKETS_8 = new Uint32Array(257);

function sweep(r: RangeSet, expiresAt: Float64Array): Segments {
  const W = r.W;
  const order = sortRanges(r);
  const s = new Sweeper(r, expiresAt);
  const scratch = new Uint32Array(W);
  for (let k = 0; k < r.count; k++) s.push(order[k]!, scratch);
  s.popUntil(null, 0);
  const count = s.offsets.length - 1;
  const starts = s.starts.trimmed();
  // Small IPv6 tables get 256 buckets: the search is short anyway, and 256 KB per rebuild is not free.
  const bucketShift = W === 4 && count < 4096 ? 24 : 16;
  return {
    W,
    count,
    starts,
    ends: s.ends.trimmed(),
    offsets: s.offsets.trimmed(),
    list: s.list.trimmed(),
    expiry: s.expiry.trimmed(),
    buckets: bucketIndex(count, starts, W, bucketShift),
    bucketShift,
  };
}

// A segment's bucket is its start's first word >>> shift.
function bucketIndex(count: number, starts: Uint32Array, stride: number, shift: number): Uint32Array {
  if (count === 0) return shift === 16 ? EMPTY_BUCKETS_16 : EMPTY_BUCKETS_8;
  const buckets = new Uint32Array((1 << (32 - shift)) + 1);
  let h = 0;
  for (let s = 0; s < count; s++) {
    const key = starts[s * stride]! >>> shift;
    if (key >= h) {
      buckets.fill(s, h, key + 1);
      h = key + 1;
    }
  }
  buckets.fill(count, h);
  return buckets;
}

/** Whole seconds, rounded up, of a max expiry, such that max is in ((c - 1) * 1000, c * 1000]. */
function coarseSeconds(max: number): number {
  if (max === Infinity) return COARSE_NEVER;
  // Non-positive values and anything past 2106 (seconds beyond 32 bits) take the exact path.
  if (!(max > 0) || max > (COARSE_NEVER - 1) * 1000) return COARSE_EXACT;
  let c = Math.ceil(max / 1000);
  // Division rounding can be one off for fractional values; c * 1000 is exact here, so settle it exactly.
  if (c * 1000 < max) c++;
  if (c > 1 && (c - 1) * 1000 >= max) c--;
  return c;
}

function toV4Table(s: Segments): V4Table {
  const startLow = new Uint16Array(s.count);
  const hot = new Uint32Array(2 * s.count);
  for (let i = 0; i < s.count; i++) {
    startLow[i] = s.starts[i]! & 0xffff;
    hot[2 * i] = s.ends[i]!;
    hot[2 * i + 1] = coarseSeconds(s.expiry[2 * i + 1]!);
  }
  return { count: s.count, offsets: s.offsets, list: s.list, expiry: s.expiry, buckets: s.buckets, bucketShift: s.bucketShift, startLow, hot };
}

function toV6Table(s: Segments): V6Table {
  return {
    count: s.count,
    offsets: s.offsets,
    list: s.list,
    expiry: s.expiry,
    buckets: s.buckets,
    bucketShift: s.bucketShift,
    starts: s.starts,
    ends: s.ends,
  };
}
