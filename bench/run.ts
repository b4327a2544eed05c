// `npm run bench`: every benchmark, one table. Never part of `npm test`.
// BENCH_ONLY=matcher|http runs one group; BENCH_HTTP_SECONDS sets the HTTP load duration.
import { printTable, type BenchRow } from "./table.ts";
import { runMatcherBench } from "./matcher.bench.ts";
import { runHttpBench } from "./http.bench.ts";

const only = process.env.BENCH_ONLY;
const rows: BenchRow[] = [];
if (!only || only === "matcher") rows.push(...(await runMatcherBench()));
if (!only || only === "http") rows.push(...(await runHttpBench()));
printTable(rows);
