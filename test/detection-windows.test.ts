// The sentinel's pure parts: per-source sliding windows (counts, distinct values, expiry, bounded
// memory) and the classifiers (which threat, how severe, whether it trips a block).
import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, DetectionWindows, type DetectionEvent } from "../src/domains/detection/windows.ts";
import { uuidv7 } from "../src/lib/ids.ts";
import { classifyEvent, classifySource, tripsBlock, type Thresholds } from "../src/domains/detection/classify.ts";

const T0 = Date.parse("2026-03-01T12:00:00Z");
const MIN = 60_000;
const WINDOW = 10 * MIN;
let seq = 0;

const ev = (over: Partial<DetectionEvent> & { at?: number } = {}): DetectionEvent => {
  const at = over.at ?? T0;
  return {
    id: String(++seq),
    sensorName: "ssh-trap",
    sourceIp: "198.18.0.1",
    eventType: "auth_attempt",
    detectedThreat: null,
    occurredAt: new Date(at),
    receivedAt: new Date(at),
    payload: { username: "root", outcome: "failed" },
    ...over,
  };
};

const thresholds: Thresholds = { maxFailedAuth: 5, maxScanEvents: 10, distinctUsernames: 10, distinctPorts: 10 };

describe("DetectionWindows", () => {
  it("counts failed logins, successes, scans, commands, downloads and distinct values per source", () => {
    const w = new DetectionWindows();
    for (let i = 0; i < 6; i++) w.record(ev({ payload: { username: i < 3 ? "root" : "admin", outcome: "failed" }, at: T0 + i * 1000 }), T0 + 10_000, WINDOW);
    w.record(ev({ payload: { username: "pi", outcome: "success" } }), T0 + 10_000, WINDOW);
    w.record(ev({ eventType: "scan", payload: { dst_port: 22 } }), T0 + 10_000, WINDOW);
    w.record(ev({ eventType: "scan", payload: { dst_port: "23" } }), T0 + 10_000, WINDOW);
    w.record(ev({ eventType: "command", payload: { command: "uname -a" } }), T0 + 10_000, WINDOW);
    w.record(ev({ eventType: "exploitation", payload: { url: "http://x/y.sh" } }), T0 + 10_000, WINDOW);
    w.record(ev({ sourceIp: "198.18.0.2" }), T0 + 10_000, WINDOW);
    const c = w.counts("198.18.0.1", T0 + 10_000, WINDOW)!;
    expect(c).toMatchObject({ failedAuth: 6, successfulAuth: 1, scanEvents: 2, commands: 1, downloads: 1, events: 11, distinctUsernames: 3, distinctPorts: 2 });
    expect(c.sensors).toEqual(["ssh-trap"]);
    expect(c.eventIds).toHaveLength(11);
    expect(w.counts("198.18.0.2", T0 + 10_000, WINDOW)).toMatchObject({ failedAuth: 1, events: 1 });
    expect(w.size).toBe(2);
  });

  it("an auth attempt without an outcome counts as failed (the native contract has none)", () => {
    const w = new DetectionWindows();
    w.record(ev({ payload: { username: "admin" } }), T0, WINDOW);
    expect(w.counts("198.18.0.1", T0, WINDOW)).toMatchObject({ failedAuth: 1, successfulAuth: 0 });
  });

  it("slides: events leave the window as time passes, and pruning frees their sources", () => {
    const w = new DetectionWindows();
    for (let i = 0; i < 5; i++) w.record(ev({ at: T0 + i * MIN }), T0 + i * MIN, WINDOW);
    expect(w.counts("198.18.0.1", T0 + 5 * MIN, WINDOW)?.failedAuth).toBe(5);
    // 12 minutes later the first two minutes have left a 10-minute window.
    expect(w.counts("198.18.0.1", T0 + 12 * MIN, WINDOW)?.failedAuth).toBe(3);
    expect(w.counts("198.18.0.1", T0 + 30 * MIN, WINDOW)).toBeUndefined();
    expect(w.prune(T0 + 30 * MIN, WINDOW)).toBe(0);
    expect(w.size).toBe(0);
  });

  it("ignores events older than the window and clamps future timestamps to the receive time", () => {
    const w = new DetectionWindows();
    expect(w.record(ev({ at: T0 - 30 * MIN }), T0, WINDOW)).toBe(false);
    expect(w.counts("198.18.0.1", T0, WINDOW)).toBeUndefined();
    // A sensor clock an hour ahead: counted now, not an hour from now.
    expect(w.record({ ...ev(), occurredAt: new Date(T0 + 60 * MIN), receivedAt: new Date(T0) }, T0, WINDOW)).toBe(true);
    expect(w.counts("198.18.0.1", T0 + 11 * MIN, WINDOW)).toBeUndefined();
  });

  it("accepts events arriving out of order within the window", () => {
    const w = new DetectionWindows();
    w.record(ev({ at: T0 + 5 * MIN }), T0 + 5 * MIN, WINDOW);
    w.record(ev({ at: T0 + 1 * MIN }), T0 + 5 * MIN, WINDOW);
    w.record(ev({ at: T0 + 3 * MIN }), T0 + 5 * MIN, WINDOW);
    expect(w.counts("198.18.0.1", T0 + 5 * MIN, WINDOW)?.failedAuth).toBe(3);
    expect(w.counts("198.18.0.1", T0 + 12 * MIN, WINDOW)?.failedAuth).toBe(2);
  });

  it("is bounded: the least recently active source is evicted beyond the cap, distinct values saturate", () => {
    const w = new DetectionWindows({ maxSources: 3, maxUsernames: 4, maxPorts: 4, maxEvidence: 5 });
    for (const ip of ["198.18.0.1", "198.18.0.2", "198.18.0.3"]) w.record(ev({ sourceIp: ip }), T0, WINDOW);
    w.record(ev({ sourceIp: "198.18.0.1" }), T0, WINDOW); // .1 is now the most recent
    w.record(ev({ sourceIp: "198.18.0.4" }), T0, WINDOW);
    expect(w.size).toBe(3);
    expect(w.evicted).toBe(1);
    expect(w.counts("198.18.0.2", T0, WINDOW)).toBeUndefined();
    expect(w.counts("198.18.0.1", T0, WINDOW)?.failedAuth).toBe(2);
    for (let i = 0; i < 20; i++) w.record(ev({ sourceIp: "198.18.0.9", payload: { username: `u${i}`, dst_port: 1000 + i } }), T0, WINDOW);
    const c = w.counts("198.18.0.9", T0, WINDOW)!;
    expect(c).toMatchObject({ failedAuth: 20, distinctUsernames: 4, distinctPorts: 4 });
    expect(c.eventIds).toHaveLength(5);
    expect(w.entries).toBe(w.countEntries());
  });

  it("a username is one distinct value however often it comes; the most recent ones are kept when full", () => {
    const w = new DetectionWindows({ maxUsernames: 3 });
    for (const u of ["root", "admin", "root", "pi", "root", "ubnt"]) w.record(ev({ payload: { username: u } }), T0, WINDOW);
    expect(w.counts("198.18.0.1", T0, WINDOW)?.distinctUsernames).toBe(3);
    // A minute later only the names seen then are inside a 1-minute window.
    w.record(ev({ at: T0 + 2 * MIN, payload: { username: "oracle" } }), T0 + 2 * MIN, 1 * MIN);
    expect(w.counts("198.18.0.1", T0 + 2 * MIN, 1 * MIN)?.distinctUsernames).toBe(1);
  });

  it("gives back the evidence ids as they came (UUIDs are kept packed, anything else as it is)", () => {
    const w = new DetectionWindows();
    const ids = [uuidv7(), uuidv7(), "00000000-0000-7000-8000-000000000000", "ffffffff-ffff-7fff-bfff-ffffffffffff", "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B", "event-42"];
    for (const id of ids) w.record(ev({ id }), T0, WINDOW);
    expect(w.counts("198.18.0.1", T0, WINDOW)?.eventIds).toEqual(ids);
  });

  it("keeps only the threat names the classifier reads; other names still make the event evidence", () => {
    const w = new DetectionWindows();
    for (let i = 0; i < 40; i++) w.record(ev({ eventType: "connection", payload: {}, detectedThreat: `made-up-${i}` }), T0, WINDOW, `made-up-${i}`);
    w.record(ev({ eventType: "connection", payload: {}, detectedThreat: "port_scan" }), T0, WINDOW, "port_scan");
    const c = w.counts("198.18.0.1", T0, WINDOW)!;
    expect(c.declaredThreats).toEqual(["port_scan"]);
    expect(c.eventIds).toHaveLength(41);
    expect(w.entries).toBe(w.countEntries());
  });

  it("drops minutes that left the window when the source is next counted, and prune() keeps the entry count exact", () => {
    const w = new DetectionWindows();
    for (let i = 0; i < 30; i++) w.record(ev({ at: T0 + i * MIN, payload: { username: `u${i}`, dst_port: i } }), T0 + i * MIN, WINDOW);
    // At most the 11 buckets a 10-minute window can touch, whatever ran before.
    expect(w.countEntries()).toBeLessThanOrEqual(1 + 11 + 11 + 11 + 1 + 30);
    expect(w.entries).toBe(w.countEntries());
    w.prune(T0 + 35 * MIN, WINDOW);
    expect(w.entries).toBe(w.countEntries());
    expect(w.counts("198.18.0.1", T0 + 35 * MIN, WINDOW)?.distinctUsernames).toBe(5);
    w.prune(T0 + 60 * MIN, WINDOW);
    expect([w.size, w.entries, w.countEntries()]).toEqual([0, 0, 0]);
  });

  it(
    "stays within its entry budget under a spray of 200,000 sources x 50 random usernames, and still classifies",
    () => {
      // The sentinel's defaults (detection.distinctUsernames 10, maxTrackedSources 100,000).
      const w = new DetectionWindows();
      const limits = DEFAULT_LIMITS;
      let rng = 0x9e3779b9;
      const next = () => {
        rng ^= rng << 13;
        rng ^= rng >>> 17;
        rng ^= rng << 5;
        return rng >>> 0;
      };
      // One mutable event: the test measures the windows, not the allocation of 10 million events.
      const payload: Record<string, unknown> = { username: "", outcome: "failed", dst_port: 22 };
      const e = ev({ payload });
      let peak = 0;
      for (let s = 0; s < 200_000; s++) {
        e.sourceIp = `2001:db8:${(s >>> 16).toString(16)}:${(s & 0xffff).toString(16)}::1`;
        for (let u = 0; u < 50; u++) {
          payload.username = `${next().toString(36)}${next().toString(36)}`;
          payload.dst_port = next() & 0xffff;
          e.id = String(++seq);
          w.record(e, T0, WINDOW);
        }
        if (w.entries > peak) peak = w.entries;
      }
      expect(peak).toBeLessThanOrEqual(limits.maxEntries);
      expect(w.countEntries()).toBe(w.entries);
      expect(w.size).toBeLessThanOrEqual(limits.maxSources);
      expect(w.evicted).toBe(200_000 - w.size);
      // Per source: itself, one bucket, 11 usernames, 11 ports, one sensor, 50 evidence ids.
      expect(w.entries).toBe(w.size * (1 + 1 + 11 + 11 + 1 + 50));
      const last = w.counts(e.sourceIp, T0, WINDOW)!;
      expect(last).toMatchObject({ failedAuth: 50, distinctUsernames: limits.maxUsernames, distinctPorts: limits.maxPorts });
      expect(classifySource(last, thresholds)[0]).toMatchObject({ threat: "credential_stuffing", trips: true });
    },
    300_000,
  );
});

describe("classifiers", () => {
  const counts = (over: Partial<Parameters<typeof classifySource>[0]>) => ({
    sourceIp: "198.18.0.1",
    failedAuth: 0,
    successfulAuth: 0,
    scanEvents: 0,
    commands: 0,
    downloads: 0,
    events: 1,
    distinctUsernames: 0,
    distinctPorts: 0,
    declaredThreats: [],
    sensors: [],
    eventIds: [],
    firstSeen: new Date(T0),
    lastSeen: new Date(T0),
    ...over,
  });

  it("brute force: failed logins at the threshold with few usernames; below it, nothing", () => {
    expect(classifySource(counts({ failedAuth: 4, distinctUsernames: 1 }), thresholds)).toEqual([]);
    expect(tripsBlock(counts({ failedAuth: 4 }), thresholds)).toBe(false);
    const [d] = classifySource(counts({ failedAuth: 5, distinctUsernames: 1 }), thresholds);
    expect(d).toMatchObject({ threat: "brute_force", severity: "high", trips: true });
    expect(tripsBlock(counts({ failedAuth: 5 }), thresholds)).toBe(true);
  });

  it("a success after failures makes it critical (the guess may have worked)", () => {
    expect(classifySource(counts({ failedAuth: 9, successfulAuth: 1, distinctUsernames: 2 }), thresholds)[0]).toMatchObject({ threat: "brute_force", severity: "critical" });
  });

  it("credential stuffing: many distinct usernames instead of brute force", () => {
    const ds = classifySource(counts({ failedAuth: 30, distinctUsernames: 10 }), thresholds);
    expect(ds.map((d) => d.threat)).toEqual(["credential_stuffing"]);
    expect(ds[0]).toMatchObject({ severity: "high", trips: true });
  });

  it("port scan: scan events at max_scan_events trip a block; many ports alone only open an incident", () => {
    expect(classifySource(counts({ scanEvents: 10 }), thresholds)[0]).toMatchObject({ threat: "port_scan", trips: true });
    expect(classifySource(counts({ scanEvents: 2, distinctPorts: 10 }), thresholds)[0]).toMatchObject({ threat: "port_scan", trips: false });
    expect(classifySource(counts({ scanEvents: 9, distinctPorts: 9 }), thresholds)).toEqual([]);
  });

  it("malware download is critical, command execution medium; neither trips a block alone", () => {
    const ds = classifySource(counts({ downloads: 1, commands: 3 }), thresholds);
    expect(ds.map((d) => [d.threat, d.severity, d.trips])).toEqual([
      ["malware_download", "critical", false],
      ["command_execution", "medium", false],
    ]);
  });

  it("per-event threats: the sensor's label wins, else downloads and commands are recognised", () => {
    expect(classifyEvent({ eventType: "auth_attempt", detectedThreat: "credential_stuffing", payload: {} })).toBe("credential_stuffing");
    expect(classifyEvent({ eventType: "exploitation", detectedThreat: null, payload: { shasum: "ab" } })).toBe("malware_download");
    expect(classifyEvent({ eventType: "exploitation", detectedThreat: null, payload: {} })).toBeNull();
    expect(classifyEvent({ eventType: "command", detectedThreat: null, payload: { command: "id" } })).toBe("command_execution");
    expect(classifyEvent({ eventType: "connection", detectedThreat: null, payload: {} })).toBeNull();
  });

  it("a threat a sensor declared opens an incident even when the counts do not show it", () => {
    const ds = classifySource(counts({ failedAuth: 1, declaredThreats: ["credential_stuffing"] }), thresholds);
    expect(ds).toEqual([expect.objectContaining({ threat: "credential_stuffing", severity: "medium", trips: false })]);
  });
});
