// Per-source sliding-window counters over the policy's detection window, in memory and bounded:
// counts live in per-minute buckets (a bucket counts while any part of it is inside the window, so
// an edge may be over-counted by less than a minute), distinct usernames and ports are capped per
// source, and at most `maxSources` sources are tracked: the least recently active is evicted first.
// Each node counts the events it ingested itself (see docs/detection.md).

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
  /** distinct usernames and distinct ports remembered per source (the counts saturate there) */
  maxDistinct: number;
  /** event ids kept per source as evidence */
  maxEvidence: number;
};

export const DEFAULT_LIMITS: WindowLimits = { maxSources: 100_000, maxDistinct: 256, maxEvidence: 50 };

const MINUTE = 60_000;
const MAX_THREATS_PER_SOURCE = 16;
const MAX_SENSORS_PER_SOURCE = 16;

type Bucket = { minute: number; failed: number; success: number; scans: number; commands: number; downloads: number; events: number };

type SourceState = {
  buckets: Bucket[];
  usernames: Map<string, number>;
  ports: Map<number, number>;
  threats: Map<string, number>;
  sensors: Map<string, number>;
  evidence: { id: string; at: number }[];
  firstSeen: number;
  lastSeen: number;
};

const text = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);
const port = (v: unknown): number | undefined => {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : undefined;
};

/** Whether an event counts as a failed authentication (no outcome given counts as failed). */
export const isFailedAuth = (e: Pick<DetectionEvent, "eventType" | "payload">) => e.eventType === "auth_attempt" && e.payload.outcome !== "success";
export const isDownload = (e: Pick<DetectionEvent, "eventType" | "payload">) =>
  e.eventType === "exploitation" && (text(e.payload.url) !== undefined || text(e.payload.shasum) !== undefined);

/** Remembers `key` as seen at `at`, keeping the map in least-recently-seen order and at most `cap` long. */
const touch = <K>(map: Map<K, number>, key: K, at: number, cap: number) => {
  const previous = map.get(key);
  if (previous !== undefined) {
    if (previous >= at) return;
    map.delete(key);
  }
  map.set(key, at);
  if (map.size > cap) map.delete(map.keys().next().value as K);
};

const countSince = <K>(map: Map<K, number>, cutoff: number): number => {
  let n = 0;
  for (const at of map.values()) if (at > cutoff) n++;
  return n;
};

const pruneMap = <K>(map: Map<K, number>, cutoff: number) => {
  for (const [key, at] of map) if (at <= cutoff) map.delete(key);
};

export class DetectionWindows {
  private readonly sources = new Map<string, SourceState>();
  private readonly limits: WindowLimits;
  private evictedCount = 0;

  constructor(limits: Partial<WindowLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  get size(): number {
    return this.sources.size;
  }

  /** Sources dropped because the cap was reached (since start). */
  get evicted(): number {
    return this.evictedCount;
  }

  /**
   * Counts one event at its time (occurred_at, never later than received_at). An event older than
   * the window is ignored. Returns whether it was counted.
   */
  record(event: DetectionEvent, nowMs: number, windowMs: number, threat: string | null = event.detectedThreat): boolean {
    const at = Math.min(event.occurredAt.getTime(), event.receivedAt.getTime(), nowMs);
    if (Math.floor(at / MINUTE) < Math.floor((nowMs - windowMs) / MINUTE)) return false;
    let state = this.sources.get(event.sourceIp);
    if (state) {
      // Most recently active last: Map order is the eviction order.
      this.sources.delete(event.sourceIp);
    } else {
      state = { buckets: [], usernames: new Map(), ports: new Map(), threats: new Map(), sensors: new Map(), evidence: [], firstSeen: at, lastSeen: at };
    }
    this.sources.set(event.sourceIp, state);
    while (this.sources.size > this.limits.maxSources) {
      this.sources.delete(this.sources.keys().next().value as string);
      this.evictedCount++;
    }

    const minute = Math.floor(at / MINUTE);
    let bucket: Bucket | undefined;
    // Buckets are sorted by minute; events arrive nearly in order, so search from the end.
    let i = state.buckets.length - 1;
    while (i >= 0 && state.buckets[i]!.minute > minute) i--;
    if (i >= 0 && state.buckets[i]!.minute === minute) bucket = state.buckets[i];
    else {
      bucket = { minute, failed: 0, success: 0, scans: 0, commands: 0, downloads: 0, events: 0 };
      state.buckets.splice(i + 1, 0, bucket);
    }
    bucket!.events++;
    let relevant = threat !== null;
    if (event.eventType === "auth_attempt") {
      relevant = true;
      if (isFailedAuth(event)) bucket!.failed++;
      else bucket!.success++;
      const username = text(event.payload.username);
      if (username !== undefined) touch(state.usernames, username.slice(0, 128), at, this.limits.maxDistinct);
    } else if (event.eventType === "scan") {
      relevant = true;
      bucket!.scans++;
    } else if (event.eventType === "command") {
      relevant = true;
      bucket!.commands++;
    } else if (isDownload(event)) {
      relevant = true;
      bucket!.downloads++;
    }
    const dst = port(event.payload.dst_port);
    if (dst !== undefined) touch(state.ports, dst, at, this.limits.maxDistinct);
    if (threat !== null) touch(state.threats, threat, at, MAX_THREATS_PER_SOURCE);
    touch(state.sensors, event.sensorName, at, MAX_SENSORS_PER_SOURCE);
    if (relevant) {
      state.evidence.push({ id: event.id, at });
      if (state.evidence.length > this.limits.maxEvidence) state.evidence.splice(0, state.evidence.length - this.limits.maxEvidence);
    }
    if (at < state.firstSeen) state.firstSeen = at;
    if (at > state.lastSeen) state.lastSeen = at;
    return true;
  }

  /** What the window holds for a source now; undefined when nothing. */
  counts(sourceIp: string, nowMs: number, windowMs: number): SourceCounts | undefined {
    const state = this.sources.get(sourceIp);
    if (!state) return undefined;
    const cutoff = nowMs - windowMs;
    const bucketCutoff = Math.floor(cutoff / MINUTE);
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
      distinctUsernames: countSince(state.usernames, edge - 1),
      distinctPorts: countSince(state.ports, edge - 1),
      declaredThreats: [...state.threats].filter(([, at]) => at >= edge).map(([t]) => t),
      sensors: [...state.sensors].filter(([, at]) => at >= edge).map(([s]) => s).sort(),
      eventIds: state.evidence.filter((e) => e.at >= edge).map((e) => e.id),
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
      if (drop) state.buckets.splice(0, drop);
      if (state.buckets.length === 0) {
        this.sources.delete(ip);
        continue;
      }
      pruneMap(state.usernames, edge - 1);
      pruneMap(state.ports, edge - 1);
      pruneMap(state.threats, edge - 1);
      pruneMap(state.sensors, edge - 1);
      const keep = state.evidence.findIndex((e) => e.at >= edge);
      if (keep > 0) state.evidence.splice(0, keep);
      else if (keep === -1) state.evidence.length = 0;
    }
    return this.sources.size;
  }
}
