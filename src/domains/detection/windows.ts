// Per-source sliding-window counters over the policy's detection window, in memory and bounded
// whatever arrives, because every key here is chosen by an attacker (source addresses, usernames,
// ports): counts live in per-minute buckets (a bucket counts while any part of it is inside the
// window, so an edge may be over-counted by less than a minute); distinct usernames (as seeded 64-bit
// hashes, never their text) and ports are remembered per source only up to what the classifier needs
// (its threshold + 1); only the five known threat names are kept; at most `maxSources` sources and
// `maxEntries` entries in all are held, the least recently active source evicted first.
// Each node counts the events it ingested itself (see docs/detection.md).
import { isDownload, isFailedAuth, isThreat } from "./classify.ts";

/** The fields of a stored event the counters read (structurally a sensors IngestedEvent). */
export type DetectionEvent = {
  id: string;
  sensorName: string;
  sourceIp: string;
  eventType: string;
  detectedThreat: string | null;
  occurredAt: Date;
  receivedAt: Date;
  payload: Record<string, unknown>;
};

export type SourceCounts = {
  sourceIp: string;
  /** auth_attempt events whose outcome is not "success" */
  failedAuth: number;
  successfulAuth: number;
  scanEvents: number;
  commands: number;
  /** exploitation events naming a url or shasum */
  downloads: number;
  events: number;
  distinctUsernames: number;
  distinctPorts: number;
  /** threats the sensors (or the stateless classifier) named on events in the window */
  declaredThreats: string[];
  sensors: string[];
  /** ids of the most recent events that count towards a detection, oldest first */
  eventIds: string[];
  firstSeen: Date;
  lastSeen: Date;
};

export type WindowLimits = {
  /** sources tracked at once; the least recently active is evicted beyond it */
  maxSources: number;
  /** distinct usernames remembered per source (the count saturates there): the classifier's threshold + 1 */
  maxUsernames: number;
  /** distinct destination ports remembered per source: the classifier's threshold + 1 */
  maxPorts: number;
  /** event ids kept per source as evidence */
  maxEvidence: number;
  /**
   * Entries held in all (a source, a minute bucket, a remembered username, port, threat or sensor, an
   * evidence id): the least recently active sources are evicted beyond it.
   */
  maxEntries: number;
};

/** Entries budgeted per tracked source by default (the sentinel's budget is maxTrackedSources times this). */
export const ENTRIES_PER_SOURCE = 20;

export const DEFAULT_LIMITS: WindowLimits = {
  maxSources: 100_000,
  maxUsernames: 11,
  maxPorts: 11,
  maxEvidence: 50,
  maxEntries: 100_000 * ENTRIES_PER_SOURCE,
};

const MINUTE = 60_000;
const MAX_SENSORS_PER_SOURCE = 16;

type Bucket = { minute: number; failed: number; success: number; scans: number; commands: number; downloads: number; events: number };

/**
 * At most `cap` distinct keys with when each was last seen, as one flat array of [key..., at]
 * records (for hashes and ports a packed array of numbers: no object per entry). A full set
 * replaces the key seen longest ago (or drops the new one if it is older still), so it holds the
 * `cap` most recent keys and a count of those inside the window saturates at `cap`.
 */
class Recent<K extends number | string> {
  private readonly data: (K | number)[] = [];
  private readonly step: number;

  constructor(width: 1 | 2) {
    this.step = width + 1;
  }

  get size(): number {
    return this.data.length / this.step;
  }

  /** Returns 1 when the set grew, else 0. */
  touch(at: number, cap: number, a: K, b = 0): number {
    const d = this.data;
    const step = this.step;
    const t = step - 1;
    let oldest = -1;
    for (let i = 0; i < d.length; i += step) {
      if (d[i] === a && (step === 2 || d[i + 1] === b)) {
        if ((d[i + t] as number) < at) d[i + t] = at;
        return 0;
      }
      if (oldest < 0 || (d[i + t] as number) < (d[oldest + t] as number)) oldest = i;
    }
    if (d.length < cap * step) {
      if (step === 2) d.push(a, at);
      else d.push(a, b, at);
      return 1;
    }
    if (oldest >= 0 && (d[oldest + t] as number) < at) {
      d[oldest] = a;
      if (step === 3) d[oldest + 1] = b;
      d[oldest + t] = at;
    }
    return 0;
  }

  countSince(edge: number): number {
    let n = 0;
    for (let i = this.step - 1; i < this.data.length; i += this.step) if ((this.data[i] as number) >= edge) n++;
    return n;
  }

  keysSince(edge: number): K[] {
    const out: K[] = [];
    for (let i = 0; i < this.data.length; i += this.step) if ((this.data[i + this.step - 1] as number) >= edge) out.push(this.data[i] as K);
    return out;
  }

  /** Forgets the keys last seen before `edge`; returns how many. */
  prune(edge: number): number {
    const d = this.data;
    let w = 0;
    for (let r = 0; r < d.length; r += this.step) {
      if ((d[r + this.step - 1] as number) < edge) continue;
      for (let k = 0; k < this.step; k++) d[w + k] = d[r + k]!;
      w += this.step;
    }
    const removed = (d.length - w) / this.step;
    d.length = w;
    return removed;
  }
}

// The four 32-bit words of the last id packed (module scratch, like the username hash).
const words = [0, 0, 0, 0];
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX_VALUE["0123456789abcdef".charCodeAt(i)] = i;
/** Packs a canonical lowercase UUID into `words`; false for any other string. */
const packUuid = (s: string): boolean => {
  if (s.length !== 36) return false;
  let w = 0;
  let acc = 0;
  let digits = 0;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
      continue;
    }
    const v = c < 128 ? HEX_VALUE[c]! : -1;
    if (v < 0) return false;
    acc = acc * 16 + v;
    if (++digits === 8) {
      words[w++] = acc;
      acc = 0;
      digits = 0;
    }
  }
  return true;
};
const hex8 = (n: number) => n.toString(16).padStart(8, "0");
const unpackUuid = (a: number, b: number, c: number, d: number) => {
  const hb = hex8(b);
  const hc = hex8(c);
  return `${hex8(a)}-${hb.slice(0, 4)}-${hb.slice(4)}-${hc.slice(0, 4)}-${hc.slice(4)}${hex8(d)}`;
};

/**
 * The ids of the last events that counted, oldest first, as flat [w0, w1, w2, w3, at] records:
 * event ids are UUIDs, kept as four 32-bit words rather than as strings (an id built by
 * concatenation is a tree of string pieces many times its 36 characters). Any other id is kept as
 * the string in the first slot.
 */
class EvidenceIds {
  private readonly data: (number | string)[] = [];

  get size(): number {
    return this.data.length / 5;
  }

  /** Returns the change in size (1, or 0 when the oldest made room). */
  push(id: string, at: number, cap: number): number {
    if (cap <= 0) return 0;
    if (packUuid(id)) this.data.push(words[0]!, words[1]!, words[2]!, words[3]!, at);
    else this.data.push(id, 0, 0, 0, at);
    if (this.data.length <= cap * 5) return 1;
    this.data.splice(0, this.data.length - cap * 5);
    return 0;
  }

  idsSince(edge: number): string[] {
    const d = this.data;
    const out: string[] = [];
    for (let i = 0; i < d.length; i += 5) {
      if ((d[i + 4] as number) < edge) continue;
      const first = d[i]!;
      out.push(typeof first === "string" ? first : unpackUuid(first, d[i + 1] as number, d[i + 2] as number, d[i + 3] as number));
    }
    return out;
  }

  /** Drops the records before the first one at or after `edge`; returns how many. */
  prune(edge: number): number {
    const d = this.data;
    let i = 0;
    while (i < d.length && (d[i + 4] as number) < edge) i += 5;
    if (i) d.splice(0, i);
    return i / 5;
  }
}

type SourceState = {
  buckets: Bucket[];
  /** seeded 64-bit hashes of the usernames, as two 32-bit halves */
  usernames: Recent<number>;
  ports: Recent<number>;
  threats: Recent<string>;
  sensors: Recent<string>;
  evidence: EvidenceIds;
  firstSeen: number;
  lastSeen: number;
  /** what this source holds against maxEntries: itself and everything above */
  entries: number;
};

const text = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);
const port = (v: unknown): number | undefined => {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : undefined;
};

// The hash of the last username, in two 32-bit halves (module scratch: no allocation per event).
let hashHi = 0;
let hashLo = 0;
/**
 * A seeded 64-bit string hash (cyrb53's two lanes, kept whole). Not cryptographic: a collision only
 * makes two usernames count as one, which can turn credential stuffing into brute force but never
 * changes whether failed logins trip a block; the per-process random seed keeps an attacker from
 * choosing colliding names offline.
 */
const hashUsername = (s: string, seed: number) => {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  hashHi = h2 >>> 0;
  hashLo = h1 >>> 0;
};

export class DetectionWindows {
  private readonly sources = new Map<string, SourceState>();
  private readonly limits: WindowLimits;
  private readonly seed: number;
  private total = 0;
  private evictedCount = 0;

  constructor(limits: Partial<WindowLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.seed = crypto.getRandomValues(new Uint32Array(1))[0]!;
  }

  get size(): number {
    return this.sources.size;
  }

  /** Entries held now, against limits.maxEntries. */
  get entries(): number {
    return this.total;
  }

  /** Sources dropped because a cap was reached (since start). */
  get evicted(): number {
    return this.evictedCount;
  }

  has(sourceIp: string): boolean {
    return this.sources.has(sourceIp);
  }

  /**
   * Counts one event at its time (occurred_at, never later than received_at). An event older than
   * the window is ignored. Returns whether it was counted.
   */
  record(event: DetectionEvent, nowMs: number, windowMs: number, threat: string | null = event.detectedThreat): boolean {
    const at = Math.min(event.occurredAt.getTime(), event.receivedAt.getTime(), nowMs);
    const bucketCutoff = Math.floor((nowMs - windowMs) / MINUTE);
    if (Math.floor(at / MINUTE) < bucketCutoff) return false;
    let state = this.sources.get(event.sourceIp);
    if (state) {
      // Most recently active last: Map order is the eviction order.
      this.sources.delete(event.sourceIp);
    } else {
      state = {
        buckets: [],
        usernames: new Recent(2),
        ports: new Recent(1),
        threats: new Recent(1),
        sensors: new Recent(1),
        evidence: new EvidenceIds(),
        firstSeen: at,
        lastSeen: at,
        entries: 1,
      };
      this.total++;
    }
    this.sources.set(event.sourceIp, state);
    let added = 0;

    // Minutes that left the window go now, not only at the next prune().
    let stale = 0;
    while (stale < state.buckets.length && state.buckets[stale]!.minute < bucketCutoff) stale++;
    if (stale) {
      state.buckets.splice(0, stale);
      added -= stale;
    }
    const minute = Math.floor(at / MINUTE);
    let bucket: Bucket | undefined;
    // Buckets are sorted by minute; events arrive nearly in order, so search from the end.
    let i = state.buckets.length - 1;
    while (i >= 0 && state.buckets[i]!.minute > minute) i--;
    if (i >= 0 && state.buckets[i]!.minute === minute) bucket = state.buckets[i]!;
    else {
      bucket = { minute, failed: 0, success: 0, scans: 0, commands: 0, downloads: 0, events: 0 };
      state.buckets.splice(i + 1, 0, bucket);
      added++;
    }
    bucket.events++;
    let relevant = threat !== null;
    if (event.eventType === "auth_attempt") {
      relevant = true;
      if (isFailedAuth(event)) bucket.failed++;
      else bucket.success++;
      const username = text(event.payload.username);
      if (username !== undefined) {
        hashUsername(username, this.seed);
        added += state.usernames.touch(at, this.limits.maxUsernames, hashHi, hashLo);
      }
    } else if (event.eventType === "scan") {
      relevant = true;
      bucket.scans++;
    } else if (event.eventType === "command") {
      relevant = true;
      bucket.commands++;
    } else if (isDownload(event)) {
      relevant = true;
      bucket.downloads++;
    }
    const dst = port(event.payload.dst_port);
    if (dst !== undefined) added += state.ports.touch(at, this.limits.maxPorts, dst);
    // Only the names the classifier reads; anything else a sensor calls a threat stays on the event.
    if (isThreat(threat)) added += state.threats.touch(at, Number.MAX_SAFE_INTEGER, threat);
    added += state.sensors.touch(at, MAX_SENSORS_PER_SOURCE, event.sensorName);
    if (relevant) added += state.evidence.push(event.id, at, this.limits.maxEvidence);
    if (at < state.firstSeen) state.firstSeen = at;
    if (at > state.lastSeen) state.lastSeen = at;
    state.entries += added;
    this.total += added;
    this.evictBeyondLimits();
    return true;
  }

  /** Drops the least recently active sources while a cap is exceeded (never the one just counted). */
  private evictBeyondLimits() {
    while (this.sources.size > this.limits.maxSources || (this.total > this.limits.maxEntries && this.sources.size > 1)) {
      const [ip, state] = this.sources.entries().next().value as [string, SourceState];
      this.sources.delete(ip);
      this.total -= state.entries;
      this.evictedCount++;
    }
  }

  /** What the window holds for a source now; undefined when nothing. */
  counts(sourceIp: string, nowMs: number, windowMs: number): SourceCounts | undefined {
    const state = this.sources.get(sourceIp);
    if (!state) return undefined;
    const bucketCutoff = Math.floor((nowMs - windowMs) / MINUTE);
    const c = { failed: 0, success: 0, scans: 0, commands: 0, downloads: 0, events: 0 };
    for (const b of state.buckets) {
      if (b.minute < bucketCutoff) continue;
      c.failed += b.failed;
      c.success += b.success;
      c.scans += b.scans;
      c.commands += b.commands;
      c.downloads += b.downloads;
      c.events += b.events;
    }
    if (c.events === 0) return undefined;
    const edge = bucketCutoff * MINUTE;
    return {
      sourceIp,
      failedAuth: c.failed,
      successfulAuth: c.success,
      scanEvents: c.scans,
      commands: c.commands,
      downloads: c.downloads,
      events: c.events,
      distinctUsernames: state.usernames.countSince(edge),
      distinctPorts: state.ports.countSince(edge),
      declaredThreats: state.threats.keysSince(edge),
      sensors: state.sensors.keysSince(edge).sort(),
      eventIds: state.evidence.idsSince(edge),
      firstSeen: new Date(Math.max(state.firstSeen, edge)),
      lastSeen: new Date(state.lastSeen),
    };
  }

  /** Drops what has left the window (and sources with nothing left); returns how many sources remain. */
  prune(nowMs: number, windowMs: number): number {
    const bucketCutoff = Math.floor((nowMs - windowMs) / MINUTE);
    const edge = bucketCutoff * MINUTE;
    for (const [ip, state] of this.sources) {
      let drop = 0;
      while (drop < state.buckets.length && state.buckets[drop]!.minute < bucketCutoff) drop++;
      if (drop === state.buckets.length) {
        this.sources.delete(ip);
        this.total -= state.entries;
        continue;
      }
      let removed = drop;
      if (drop) state.buckets.splice(0, drop);
      removed += state.usernames.prune(edge) + state.ports.prune(edge) + state.threats.prune(edge) + state.sensors.prune(edge);
      removed += state.evidence.prune(edge);
      state.entries -= removed;
      this.total -= removed;
    }
    return this.sources.size;
  }

  /** Walks every source and counts what it holds (what `entries` keeps incrementally; tests, diagnostics). */
  countEntries(): number {
    let n = 0;
    for (const s of this.sources.values())
      n += 1 + s.buckets.length + s.usernames.size + s.ports.size + s.threats.size + s.sensors.size + s.evidence.size;
    return n;
  }
}
