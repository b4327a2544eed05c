// Shared benchmark plumbing: the row shape every bench returns, a batch timer, and the text table printer.
// Timing whole batches keeps hrtime's own cost (tens of ns) out of per-operation numbers in the 100 ns range.

export type BenchRow = {
  operation: string;
  n: number;
  opsPerSec: number;
  p50Ns: number;
  p99Ns: number;
  /** name of the row this one is compared with */
  reference?: string;
  /** opsPerSec / reference opsPerSec: 1 = as fast as the reference, 0.5 = half as fast */
  ratio?: number;
};

/** A row from an autocannon run (HTTP load), with its ratio to a reference run's requests/s. */
export const autocannonRow = (
  operation: string,
  r: { requests: { total: number; average: number }; latency: { p50: number; p99: number } },
  reference?: { name: string; rps: number },
): BenchRow => ({
  operation,
  n: r.requests.total,
  opsPerSec: r.requests.average,
  // autocannon measures latency in whole milliseconds: 0 means "under 1 ms", shown as "-".
  p50Ns: r.latency.p50 > 0 ? r.latency.p50 * 1e6 : Number.NaN,
  p99Ns: r.latency.p99 > 0 ? r.latency.p99 * 1e6 : Number.NaN,
  ...(reference ? { reference: reference.name, ratio: r.requests.average / reference.rps } : {}),
});

export type Measurement = { p50Ns: number; p99Ns: number; meanNs: number; opsPerSec: number };

// Results feed this so the JIT cannot prove a measured call useless and drop it.
let sink = 0;

/** Reads the sink; exists only so the accumulation is observable. */
export function benchSink(): number {
  return sink;
}

/**
 * Calls fn(i) `batch` times per timed batch, for `iterations` batches after `warmup` untimed ones; i keeps
 * counting across batches. p50/p99 are percentiles of the per-batch mean cost of one call, in ns.
 */
export function measure(
  fn: (i: number) => unknown,
  { iterations, batch, warmup = Math.ceil(iterations / 10) }: { iterations: number; batch: number; warmup?: number },
): Measurement {
  let i = 0;
  let local = 0;
  for (let b = 0; b < warmup; b++) {
    for (let k = 0; k < batch; k++) if (fn(i++)) local++;
  }
  const perOp = new Float64Array(iterations);
  let total = 0n;
  for (let b = 0; b < iterations; b++) {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < batch; k++) if (fn(i++)) local++;
    const dt = process.hrtime.bigint() - t0;
    total += dt;
    perOp[b] = Number(dt) / batch;
  }
  sink += local;
  perOp.sort();
  const meanNs = Number(total) / (iterations * batch);
  return { p50Ns: percentile(perOp, 0.5), p99Ns: percentile(perOp, 0.99), meanNs, opsPerSec: 1e9 / meanNs };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return "-";
  if (ns < 1e3) return `${ns.toFixed(ns < 10 ? 1 : 0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

function formatCount(v: number): string {
  if (!Number.isFinite(v)) return "-";
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)}G`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (v >= 100) return v.toFixed(0);
  return v.toFixed(2);
}

/** Prints rows as an aligned text table on stdout. */
export function printTable(rows: readonly BenchRow[]): void {
  const header = ["operation", "n", "ops/s", "p50", "p99", "ratio", "reference"];
  const body = rows.map((r) => [
    r.operation,
    formatCount(r.n),
    formatCount(r.opsPerSec),
    formatNs(r.p50Ns),
    formatNs(r.p99Ns),
    r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x`,
    r.reference ?? "",
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((cells) => cells[c]!.length)));
  // Text columns align left, numbers right.
  const leftAligned = new Set([0, 6]);
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (leftAligned.has(c) ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join("  ")
      .trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const cells of body) console.log(line(cells));
}
