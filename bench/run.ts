// `npm run bench`: every benchmark, one table. Never part of `npm test`.
// BENCH_ONLY=matcher|http|audit|auth|rules|actions|crowdsec|ingest|dashboard|detection runs one group; BENCH_HTTP_SECONDS sets the HTTP load duration;
// BENCH_AUDIT_SIZE the size of the large audit log (default 1M); BENCH_DATABASE_URL the PostgreSQL server.
import { printTable, type BenchRow } from "./table.ts";
import { runMatcherBench } from "./matcher.bench.ts";
import { runHttpBench } from "./http.bench.ts";
import { runAuditBench } from "./audit.bench.ts";
import { runAuthBench } from "./auth.bench.ts";
import { runActionsBench } from "./actions.bench.ts";
import { runRulesBench } from "./rules.bench.ts";
import { runCrowdsecBench } from "./crowdsec.bench.ts";
import { runIngestBench } from "./ingest.bench.ts";
import { runDashboardBench, runDetectionBench } from "./dashboard.bench.ts";

const only = process.env.BENCH_ONLY;
const rows: BenchRow[] = [];
if (!only || only === "matcher") rows.push(...(await runMatcherBench()));
if (!only || only === "http") rows.push(...(await runHttpBench()));
if (!only || only === "audit") rows.push(...(await runAuditBench()));
if (!only || only === "auth") rows.push(...(await runAuthBench()));
if (!only || only === "actions") rows.push(...(await runActionsBench()));
if (!only || only === "rules") rows.push(...(await runRulesBench()));
if (!only || only === "crowdsec") rows.push(...(await runCrowdsecBench()));
if (!only || only === "ingest") rows.push(...(await runIngestBench()));
if (!only || only === "dashboard") rows.push(...(await runDashboardBench()));
if (!only || only === "detection") rows.push(...(await runDetectionBench()));
printTable(rows);
