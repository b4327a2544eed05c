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
 * Layout, per family: CIDR blocks are either nested or disjoint, so a sweep over blocks sorted by (start asc,
 * size desc) keeps the blocks covering the sweep position on a stack, innermost on top. Each time the stack
 * changes we close an elementary segment [start, end] and copy the stack (top first = most specific first) into
 * the flat `list`. Gaps with no covering block get no segment, so a lookup checks `address <= end`.
 *
 *   starts/ends   Uint32Array, stride 1 (IPv4) or 4 big-endian words (IPv6), sorted, disjoint
 *   offsets       Uint32Array(segments + 1): segment i's entries are list[offsets[i] .. offsets[i+1])
 *   list          Int32Array of entry indices
 *   expiry        Float64Array(2 * segments): min and max expiresAt over the segment's entries. isBlocked is
 *                 "max > now" and never touches list or per-entry data; match skips per-entry expiry reads
 *                 when "min > now". Each of those would otherwise be a cache miss at 1M entries.
 *   buckets       Uint32Array(65537): buckets[h] = first segment whose start has top 16 bits >= h, so the
 *                 binary search runs over one /16's (IPv6: one /16's) segments instead of all of them
 *
 * Memory is sum over segments of the nesting depth: cheap for the usual mostly-disjoint lists, but a few
 * wide blocks (/9 ... /12) over many single IPs multiply it (the 1M-entry bench is that worst case).
 */
type SegmentTable = {
  readonly count: number;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly offsets: Uint32Array;
  readonly list: Int32Array;
  readonly expiry: Float64Array;
  readonly buckets: Uint32Array;
};

// Hot-path scratch for the parsed IPv6 address; lookups are synchronous, so one per module is enough.
const addr6 = new Uint32Array(4);

const EMPTY_U32 = new Uint32Array(0);
const EMPTY_I32 = new Int32Array(0);
const EMPTY_F64 = new Float64Array(0);

export class IpMatcher {
  /** Number of usable entries (rejected ones excluded), expired or not. */
  readonly size: number;
  /** Entries left out because their value or expiry could not be read; callers should log these. */
  readonly rejected: readonly RejectedEntry[];

  readonly #entries: readonly MatchEntry[];
  // Copied at build so a caller mutating its entry objects cannot change decisions of a built matcher.
  readonly #expiresAt: Float64Array;
  readonly #v4: SegmentTable;
  readonly #v6: SegmentTable;

  private constructor(entries: readonly MatchEntry[], expiresAt: Float64Array, v4: SegmentTable, v6: SegmentTable, rejected: readonly RejectedEntry[]) {
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
    // Parsed ranges, per family, indexed by position in `kept`; sized for the worst case and trimmed later.
    const v4First = new Uint32Array(n);
    const v4Last = new Uint32Array(n);
    const v4Prefix = new Uint8Array(n);
    const v4Entry = new Int32Array(n);
    let n4 = 0;
    const v6First = new Uint32Array(n * 4);
    const v6Last = new Uint32Array(n * 4);
    const v6Prefix = new Uint8Array(n);
    const v6Entry = new Int32Array(n);
    let n6 = 0;
    const w = new Uint32Array(4);

    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      const value = e.value;
      const reject = (reason: string) => void rejected.push({ id: String(e.id), value: String(value), reason });
      if (typeof e.expiresAt !== "number" || Number.isNaN(e.expiresAt)) {
        reject("expiresAt is not a number");
        continue;
      }
      if (typeof value !== "string") {
        reject("value is not a string");
        continue;
      }
      const slash = value.indexOf("/");
      let prefix: number;
      let addressText: string;
      if (e.kind === "ip") {
        if (slash >= 0) {
          reject('kind "ip" with a CIDR value');
          continue;
        }
        addressText = value;
        prefix = -1;
      } else if (e.kind === "cidr") {
        if (slash < 0) {
          reject('kind "cidr" without a prefix');
          continue;
        }
        addressText = value.slice(0, slash);
        prefix = parsePrefix(value, slash + 1);
        if (prefix < 0) {
          reject("bad prefix length");
          continue;
        }
      } else {
        reject(`unknown kind ${JSON.stringify(e.kind)}`);
        continue;
      }

      let family: 4 | 6;
      let v4 = parseIpv4ToUint32(addressText);
      if (v4 >= 0) {
        family = 4;
        if (prefix < 0) prefix = 32;
      } else if (parseIpv6ToWords(addressText, w, 0)) {
        if (prefix < 0) prefix = 128;
        if (isV4MappedWords(w) && prefix >= 96) {
          family = 4;
          v4 = w[3]!;
          prefix -= 96;
        } else {
          family = 6;
        }
      } else {
        reject("not an IP address");
        continue;
      }
      if (prefix > (family === 4 ? 32 : 128)) {
        reject("prefix length out of range");
        continue;
      }

      const k = kept.length;
      kept.push(e);
      expiresAt[k] = e.expiresAt;
      if (family === 4) {
        const mask = maskForBits(prefix);
        v4First[n4] = (v4 & mask) >>> 0;
        v4Last[n4] = ((v4 & mask) | ~mask) >>> 0;
        v4Prefix[n4] = prefix;
        v4Entry[n4] = k;
        n4++;
      } else {
        for (let j = 0; j < 4; j++) {
          const mask = maskForBits(prefix - 32 * j);
          v6First[n6 * 4 + j] = (w[j]! & mask) >>> 0;
          v6Last[n6 * 4 + j] = ((w[j]! & mask) | ~mask) >>> 0;
        }
        v6Prefix[n6] = prefix;
        v6Entry[n6] = k;
        n6++;
      }
    }

    const v4 = sweep(1, n4, v4First, v4Last, v4Prefix, v4Entry, expiresAt);
    const v6 = sweep(4, n6, v6First, v6Last, v6Prefix, v6Entry, expiresAt);
    const trimmedExpiry = kept.length === n ? expiresAt : expiresAt.slice(0, kept.length);
    return new IpMatcher(Object.freeze(kept), trimmedExpiry, v4, v6, Object.freeze(rejected));
  }

  /**
   * Every unexpired entry covering the address (an equal IP or a containing CIDR), most specific first, ties in
   * build order. Invalid address text gives []. An entry is expired when expiresAt <= now.
   */
  match(address: string, now: number): MatchEntry[] {
    const out: MatchEntry[] = [];
    const seg = this.#locate(address);
    if (seg === null) return out;
    const { offsets, list, expiry } = seg.table;
    const i = seg.index;
    if (!(expiry[2 * i + 1]! > now)) return out;
    const entries = this.#entries;
    const start = offsets[i]!;
    const end = offsets[i + 1]!;
    if (expiry[2 * i]! > now) {
      for (let p = start; p < end; p++) out.push(entries[list[p]!]!);
      return out;
    }
    const expiresAt = this.#expiresAt;
    for (let p = start; p < end; p++) {
      const idx = list[p]!;
      if (expiresAt[idx]! > now) out.push(entries[idx]!);
    }
    return out;
  }

  /** Whether any unexpired entry covers the address; allocation-free for IPv4 and IPv6 text. */
  isBlocked(address: string, now: number): boolean {
    const a = parseIpv4ToUint32(address);
    let table: SegmentTable;
    let index: number;
    if (a >= 0) {
      table = this.#v4;
      index = findV4(table, a);
    } else {
      if (!parseIpv6ToWords(address, addr6, 0)) return false;
      if (isV4MappedWords(addr6)) {
        table = this.#v4;
        index = findV4(table, addr6[3]!);
      } else {
        table = this.#v6;
        index = findV6(table, addr6);
      }
    }
    return index >= 0 && table.expiry[2 * index + 1]! > now;
  }

  /** Bytes held in typed arrays plus the entry reference array (entry objects themselves are the caller's). */
  memoryBytes(): number {
    const t4 = this.#v4;
    const t6 = this.#v6;
    return (
      this.#expiresAt.byteLength +
      this.#entries.length * 8 +
      tableBytes(t4) +
      tableBytes(t6)
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

  #locate(address: string): { table: SegmentTable; index: number } | null {
    const a = parseIpv4ToUint32(address);
    if (a >= 0) {
      const index = findV4(this.#v4, a);
      return index < 0 ? null : { table: this.#v4, index };
    }
    if (!parseIpv6ToWords(address, addr6, 0)) return null;
    if (isV4MappedWords(addr6)) {
      const index = findV4(this.#v4, addr6[3]!);
      return index < 0 ? null : { table: this.#v4, index };
    }
    const index = findV6(this.#v6, addr6);
    return index < 0 ? null : { table: this.#v6, index };
  }
}

export function matcherMemoryBytes(m: IpMatcher): number {
  return m.memoryBytes();
}

function tableBytes(t: SegmentTable): number {
  return t.starts.byteLength + t.ends.byteLength + t.offsets.byteLength + t.list.byteLength + t.expiry.byteLength + t.buckets.byteLength;
}

function maskForBits(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (-1 << (32 - bits)) >>> 0;
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

/** Index of the segment containing `a`, or -1. */
function findV4(t: SegmentTable, a: number): number {
  const starts = t.starts;
  const h = a >>> 16;
  const bucketStart = t.buckets[h]!;
  let lo = bucketStart;
  let hi = t.buckets[h + 1]!;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (starts[mid]! <= a) lo = mid + 1;
    else hi = mid;
  }
  // lo - 1 may be the last segment of an earlier /16 that runs into this one.
  const i = lo - 1;
  if (i < 0 || t.ends[i]! < a) return -1;
  return i;
}

function findV6(t: SegmentTable, a: Uint32Array): number {
  const starts = t.starts;
  const a0 = a[0]!;
  const a1 = a[1]!;
  const a2 = a[2]!;
  const a3 = a[3]!;
  const h = a0 >>> 16;
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

// `stride` is words per start; the bucket key is the top 16 bits of the first word.
function bucketIndex(count: number, starts: Uint32Array, stride: number): Uint32Array {
  const buckets = new Uint32Array(65537);
  let s = 0;
  for (let h = 0; h <= 65536; h++) {
    while (s < count && starts[s * stride]! >>> 16 < h) s++;
    buckets[h] = s;
  }
  return buckets;
}

// Compares the W-word keys a[ai..] and b[bi..].
function cmp(W: number, a: Uint32Array, ai: number, b: Uint32Array, bi: number): number {
  for (let j = 0; j < W; j++) {
    const x = a[ai + j]!;
    const y = b[bi + j]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** dst = src + 1 (W words); returns false on wrap-around past the top of the address space. */
function increment(W: number, src: Uint32Array, si: number, dst: Uint32Array, di: number): boolean {
  let carry = 1;
  for (let j = W - 1; j >= 0; j--) {
    const v = src[si + j]! + carry;
    dst[di + j] = v >>> 0;
    carry = v > 0xffffffff ? 1 : 0;
  }
  return carry === 0;
}

/** dst = src - 1 (W words); callers guarantee src > 0. */
function decrement(W: number, src: Uint32Array, si: number, dst: Uint32Array, di: number): void {
  let borrow = 1;
  for (let j = W - 1; j >= 0; j--) {
    const v = src[si + j]! - borrow;
    dst[di + j] = v >>> 0;
    borrow = v < 0 ? 1 : 0;
  }
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

/**
 * Builds one family's segment table from m ranges (first/last keys of W words each, prefix length, entry index).
 * Relies on CIDR ranges being nested or disjoint, which is what makes the covering set a stack.
 */
function sweep(
  W: 1 | 4,
  m: number,
  first: Uint32Array,
  last: Uint32Array,
  prefix: Uint8Array,
  entry: Int32Array,
  expiresAt: Float64Array,
): SegmentTable {
  if (m === 0) {
    return { count: 0, starts: EMPTY_U32, ends: EMPTY_U32, offsets: new Uint32Array(1), list: EMPTY_I32, expiry: EMPTY_F64, buckets: new Uint32Array(65537) };
  }

  const order = new Int32Array(m);
  for (let i = 0; i < m; i++) order[i] = i;
  // Start ascending, then wider blocks first (so they sit lower on the stack), then for identical ranges the
  // later entry first, so the earlier one ends up on top and is reported first.
  if (W === 1) {
    order.sort((x, y) => first[x]! - first[y]! || prefix[x]! - prefix[y]! || entry[y]! - entry[x]!);
  } else {
    order.sort((x, y) => cmp(4, first, x * 4, first, y * 4) || prefix[x]! - prefix[y]! || entry[y]! - entry[x]!);
  }

  const starts = new GrowU32(m * 2 * W);
  const ends = new GrowU32(m * 2 * W);
  const offsets = new GrowU32(m * 2 + 1);
  const expiry = new GrowF64(m * 4);
  const list = new GrowI32(m * 2);
  offsets.data[0] = 0;
  offsets.length = 1;

  const stack = new Int32Array(m);
  let sp = 0;
  // cursor: first address not yet assigned to a segment; cursorDone once it has run past the top of the space.
  const cursor = new Uint32Array(W);
  let cursorDone = false;
  const tmp = new Uint32Array(W);

  const emit = (endKeys: Uint32Array, endIndex: number) => {
    starts.reserve(W);
    ends.reserve(W);
    for (let j = 0; j < W; j++) {
      starts.data[starts.length++] = cursor[j]!;
      ends.data[ends.length++] = endKeys[endIndex + j]!;
    }
    list.reserve(sp);
    let min = Infinity;
    let max = -Infinity;
    for (let s = sp - 1; s >= 0; s--) {
      const k = entry[stack[s]!]!;
      list.data[list.length++] = k;
      const x = expiresAt[k]!;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    expiry.reserve(2);
    expiry.data[expiry.length++] = min;
    expiry.data[expiry.length++] = max;
    offsets.reserve(1);
    offsets.data[offsets.length++] = list.length;
  };

  // Closes every stacked range that ends before `limit` (or all of them when limit is null).
  const popUntil = (limit: Uint32Array | null, li: number) => {
    while (sp > 0) {
      const top = stack[sp - 1]!;
      if (limit !== null && cmp(W, last, top * W, limit, li) >= 0) break;
      if (!cursorDone && cmp(W, cursor, 0, last, top * W) <= 0) {
        emit(last, top * W);
        if (!increment(W, last, top * W, cursor, 0)) cursorDone = true;
      }
      sp--;
    }
  };

  for (let k = 0; k < m; k++) {
    const r = order[k]!;
    popUntil(first, r * W);
    if (sp > 0 && cmp(W, cursor, 0, first, r * W) < 0) {
      decrement(W, first, r * W, tmp, 0);
      emit(tmp, 0);
    }
    for (let j = 0; j < W; j++) cursor[j] = first[r * W + j]!;
    cursorDone = false;
    stack[sp++] = r;
  }
  popUntil(null, 0);

  const count = offsets.length - 1;
  const startsArr = starts.trimmed();
  return {
    count,
    starts: startsArr,
    ends: ends.trimmed(),
    offsets: offsets.trimmed(),
    list: list.trimmed(),
    expiry: expiry.trimmed(),
    buckets: bucketIndex(count, startsArr, W),
  };
}
