// IpMatcher build time, per-lookup latency and memory at 100k and 1M random mixed entries, next to a bare
// Uint32Array binary search over the same IPv4 starts measured in the same run. Direct: node --import tsx bench/matcher.bench.ts
import { pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import ipaddr from "ipaddr.js";
import { IpMatcher, type MatchEntry } from "../src/domains/blocklist/matcher.ts";
import { uint32ToIpv4 } from "../src/lib/ip.ts";
import { measure, percentile, printTable, type BenchRow } from "./table.ts";
import { mulberry32 } from "../src/lib/prng.ts";

const LOOKUP_POOL = 1 << 16;
const BATCH = 1000;
const ITERATIONS = 2000;


function maskForBits(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (-1 << (32 - bits)) >>> 0;
}

function v6Text(w: ArrayLike<number>): string {
  const parts: number[] = [];
  for (let k = 0; k < 4; k++) parts.push(w[k]! >>> 16, w[k]! & 0xffff);
  return new ipaddr.IPv6(parts).toRFC5952String();
}

type Dataset = {
  entries: MatchEntry[];
  v4Starts: Uint32Array;
  v4Lookups: string[];
  v4LookupValues: Uint32Array;
  v6Lookups: string[];
};

/** 80% single IPs / 20% CIDRs, half IPv4 half IPv6, uniformly random; lookups are half inside an entry, half random. */
function makeDataset(n: number, seed: number, now: number): Dataset {
  const rnd = mulberry32(seed);
  const u32 = () => Math.floor(rnd() * 4294967296) >>> 0;
  const entries: MatchEntry[] = new Array(n);
  const v4Starts: number[] = [];
  const v4Ranges: [number, number][] = [];
  const v6Ranges: [Uint32Array, number][] = [];
  for (let i = 0; i < n; i++) {
    const isV6 = rnd() < 0.5;
    const isCidr = rnd() < 0.2;
    // 10% carry an expiry so the lookup path really compares against `now`.
    const expiresAt = rnd() < 0.1 ? now + 3_600_000 : Infinity;
    if (!isV6) {
      const prefix = isCidr ? 9 + Math.floor(rnd() * 23) : 32;
      const network = (u32() & maskForBits(prefix)) >>> 0;
      const text = uint32ToIpv4(network);
      entries[i] = { id: `b${i}`, kind: isCidr ? "cidr" : "ip", value: isCidr ? `${text}/${prefix}` : text, expiresAt };
      v4Starts.push(network);
      v4Ranges.push([network, prefix]);
    } else {
      const prefix = isCidr ? 33 + Math.floor(rnd() * 95) : 128;
      const w = new Uint32Array(4);
      for (let k = 0; k < 4; k++) w[k] = (u32() & maskForBits(prefix - 32 * k)) >>> 0;
      // Keep clear of ::ffff:0:0/96, which would fold to IPv4.
      if (w[0] === 0) w[0] = 0x20010db8;
      const text = v6Text(w);
      entries[i] = { id: `b${i}`, kind: isCidr ? "cidr" : "ip", value: isCidr ? `${text}/${prefix}` : text, expiresAt };
      v6Ranges.push([w, prefix]);
    }
  }
  const v4Lookups: string[] = [];
  const v4LookupValues = new Uint32Array(LOOKUP_POOL);
  const v6Lookups: string[] = [];
  for (let i = 0; i < LOOKUP_POOL; i++) {
    let v: number;
    if (rnd() < 0.5 && v4Ranges.length > 0) {
      const [network, prefix] = v4Ranges[Math.floor(rnd() * v4Ranges.length)]!;
      v = (network | (u32() & ~maskForBits(prefix))) >>> 0;
    } else {
      v = u32();
    }
    v4LookupValues[i] = v;
    v4Lookups.push(uint32ToIpv4(v));
    const w = new Uint32Array(4);
    if (rnd() < 0.5 && v6Ranges.length > 0) {
      const [network, prefix] = v6Ranges[Math.floor(rnd() * v6Ranges.length)]!;
      for (let k = 0; k < 4; k++) w[k] = (network[k]! | (u32() & ~maskForBits(prefix - 32 * k))) >>> 0;
    } else {
      for (let k = 0; k < 4; k++) w[k] = u32();
      if (w[0] === 0) w[0] = 1;
    }
    v6Lookups.push(v6Text(w));
  }
  return { entries, v4Starts: Uint32Array.from(v4Starts).sort(), v4Lookups, v4LookupValues, v6Lookups };
}

/** The reference: last start <= a in a sorted Uint32Array, nothing else. */
function bareSearch(starts: Uint32Array, a: number): number {
  let lo = 0;
  let hi = starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (starts[mid]! <= a) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

// Heap numbers are only meaningful right after a full collection; the flag can be turned on at runtime.
function getGc(): (() => void) | null {
  try {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as () => void;
  } catch {
    return null;
  }
}

const MB = 1024 * 1024;

function label(n: number): string {
  return n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`;
}

export async function runMatcherBench(
  options: { sizes?: readonly number[]; log?: (line: string) => void } = {},
): Promise<BenchRow[]> {
  const sizes = options.sizes ?? [100_000, 1_000_000];
  const log = options.log ?? ((line: string) => console.log(line));
  const gc = getGc();
  const collect = () => {
    if (gc) {
      gc();
      gc();
    }
  };
  const rows: BenchRow[] = [];
  const now = Date.now();

  for (const n of sizes) {
    const tag = label(n);
    collect();
    const beforeData = process.memoryUsage();
    const data = makeDataset(n, 0xc0ffee + n, now);
    collect();
    const before = process.memoryUsage();

    // Memory first: a fresh build from a collected heap, before timed builds leave freed pages in the RSS.
    let m = IpMatcher.build(data.entries);
    collect();
    const after = process.memoryUsage();
    const st = m.stats();
    const mb = (bytes: number) => `${bytes >= 0 ? "+" : ""}${(bytes / MB).toFixed(1)} MB`;
    log(
      `matcher ${tag}: typed arrays ${(m.memoryBytes() / MB).toFixed(1)} MB; after build rss ${mb(after.rss - before.rss)}, ` +
        `heapUsed ${mb(after.heapUsed - before.heapUsed)}, arrayBuffers ${mb(after.arrayBuffers - before.arrayBuffers)}; ` +
        `v4 ${st.v4Segments} segments / ${st.v4ListLength} list slots, v6 ${st.v6Segments} / ${st.v6ListLength}; ` +
        `the input entries themselves: heapUsed ${mb(before.heapUsed - beforeData.heapUsed)}` +
        (gc ? "" : " (no gc available: memory numbers are rough)"),
    );

    // Build: several fresh builds, keeping only the last.
    const buildRuns = n >= 1_000_000 ? 3 : 7;
    const buildNs = new Float64Array(buildRuns);
    for (let r = 0; r < buildRuns; r++) {
      m = IpMatcher.build([]);
      collect();
      const t0 = process.hrtime.bigint();
      m = IpMatcher.build(data.entries);
      buildNs[r] = Number(process.hrtime.bigint() - t0);
    }
    buildNs.sort();
    const buildMean = buildNs.reduce((a, b) => a + b, 0) / buildRuns;
    rows.push({
      operation: `build (${tag} mixed entries)`,
      n,
      opsPerSec: 1e9 / buildMean,
      p50Ns: percentile(buildNs, 0.5),
      p99Ns: percentile(buildNs, 0.99),
    });

    const mask = LOOKUP_POOL - 1;
    const { v4Lookups, v6Lookups, v4LookupValues, v4Starts } = data;
    const refName = `bsearch Uint32Array (${tag}: ${label(v4Starts.length)} v4 starts)`;
    const ref = measure((i) => bareSearch(v4Starts, v4LookupValues[i & mask]!) >= 0, { iterations: ITERATIONS, batch: BATCH });
    const opts = { iterations: ITERATIONS, batch: BATCH };
    const lookups: [string, (i: number) => unknown][] = [
      [`isBlocked IPv4 (${tag})`, (i) => m.isBlocked(v4Lookups[i & mask]!, now)],
      [`match IPv4 (${tag})`, (i) => m.match(v4Lookups[i & mask]!, now).length],
      [`isBlocked IPv6 (${tag})`, (i) => m.isBlocked(v6Lookups[i & mask]!, now)],
      [`match IPv6 (${tag})`, (i) => m.match(v6Lookups[i & mask]!, now).length],
    ];
    rows.push({ operation: refName, n: v4Starts.length, ...pick(ref) });
    for (const [operation, fn] of lookups) {
      const r = measure(fn, opts);
      rows.push({ operation, n, ...pick(r), reference: refName, ratio: r.opsPerSec / ref.opsPerSec });
    }
    // match() cost grows with the number of covering entries it returns, so say how many that was.
    const hits4 = v4Lookups.reduce((c, a) => c + (m.isBlocked(a, now) ? 1 : 0), 0);
    const hits6 = v6Lookups.reduce((c, a) => c + (m.isBlocked(a, now) ? 1 : 0), 0);
    const found4 = v4Lookups.reduce((c, a) => c + m.match(a, now).length, 0);
    const found6 = v6Lookups.reduce((c, a) => c + m.match(a, now).length, 0);
    log(
      `lookup pool ${tag}: IPv4 ${((100 * hits4) / LOOKUP_POOL).toFixed(0)}% hits, ${(found4 / LOOKUP_POOL).toFixed(1)} entries per match; ` +
        `IPv6 ${((100 * hits6) / LOOKUP_POOL).toFixed(0)}% hits, ${(found6 / LOOKUP_POOL).toFixed(1)} entries per match`,
    );
  }
  return rows;
}

function pick(r: { opsPerSec: number; p50Ns: number; p99Ns: number }) {
  return { opsPerSec: r.opsPerSec, p50Ns: r.p50Ns, p99Ns: r.p99Ns };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printTable(await runMatcherBench());
}
