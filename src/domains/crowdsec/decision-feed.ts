// Blocks as CrowdSec decisions: the wire form (pre-serialised except the counting-down duration),
// the filters bouncers send, and DecisionMirror, this node's in-memory copy of the live decisions
// that answers lookups and startup streams without touching the database.
// The mirror follows crowdsec_decisions by its change sequence: catching up reads, in one statement
// (one snapshot), every row whose creation or end has a sequence value above the mirror's, plus the
// highest value visible; values become visible in increasing order (see 0008_crowdsec.sql), so
// after a catch-up the mirror equals the table as of that value.

/** A live decision as this node holds it. */
export type DecisionEntry = {
  id: number;
  blockId: string;
  scope: "Ip" | "Range";
  value: string;
  origin: string;
  scenario: string;
  /** epoch ms; Infinity for a block that never expires */
  expiresAt: number;
  /** The JSON after the duration: `","id":1,...}`. */
  tail: string;
};

/** A projected row as the repository reads it. */
export type DecisionRow = {
  id: number;
  block_id: string;
  scope: string;
  value: string;
  reason: string;
  created_by: string;
  /** epoch ms or null */
  expires_at: number | null;
  deleted_seq: number | null;
  deleted_at: number | null;
  deleted_by: string | null;
};

/** What a never-expiring block reports as its duration (10 years; Go's time.ParseDuration reads it). */
export const NEVER_EXPIRES_DURATION = "87600h0m0s";

/** Go's time.Duration.String() for a millisecond count: "3h59m58.877s", "500ms", "-1.5s", "0s". */
export const goDuration = (ms: number): string => {
  if (!Number.isFinite(ms)) return NEVER_EXPIRES_DURATION;
  let a = Math.trunc(Math.abs(ms));
  if (a === 0) return "0s";
  const sign = ms < 0 ? "-" : "";
  if (a < 1000) return `${sign}${a}ms`;
  const h = Math.floor(a / 3_600_000);
  a -= h * 3_600_000;
  const m = Math.floor(a / 60_000);
  a -= m * 60_000;
  const s = Math.floor(a / 1000);
  const frac = a - s * 1000;
  const sec = frac ? `${s}.${String(frac).padStart(3, "0").replace(/0+$/, "")}` : String(s);
  return h ? `${sign}${h}h${m}m${sec}s` : m ? `${sign}${m}m${sec}s` : `${sign}${sec}s`;
};

// A block made by the action workflow has the reason "action <request id>: <the request's reason>".
const ACTION_PREFIX = /^action [0-9a-f-]{36}: /i;
// Requests raised for a watcher's alert: "crowdsec/<machine>: <scenario> (<message>)".
const WATCHER_REASON = /^crowdsec\/([A-Za-z0-9._@-]{1,200}): (\S{1,300})/;
// Requests the sentinel raised from honeypot telemetry: "sentinel: <threat> from <ip>: ...".
const SENTINEL_REASON = /^sentinel: ([a-z0-9_]{1,100}) from /;

/**
 * origin and scenario of a block: a watcher's block names the watcher and its scenario; blocks the
 * sentinel raised from honeypot telemetry are "honeypot" with the detected threat; everything else is
 * "portcullis" with the reason as the scenario (what bouncers log and filter on).
 */
export const originAndScenario = (reason: string, createdBy: string): { origin: string; scenario: string } => {
  const text = reason.replace(ACTION_PREFIX, "").trim();
  const watcher = WATCHER_REASON.exec(text);
  if (watcher) return { origin: watcher[1]!, scenario: watcher[2]! };
  const sentinel = SENTINEL_REASON.exec(text);
  if (sentinel) return { origin: "honeypot", scenario: `portcullis/${sentinel[1]!}` };
  const scenario = text || "portcullis/manual";
  if (createdBy.startsWith("watcher:")) return { origin: createdBy.slice("watcher:".length), scenario };
  if (createdBy === "system:sentinel" || createdBy.startsWith("sensor:") || /^honeypot\b/i.test(text)) return { origin: "honeypot", scenario };
  return { origin: "portcullis", scenario };
};

export const toEntry = (row: DecisionRow): DecisionEntry => {
  const { origin, scenario } = originAndScenario(row.reason, row.created_by);
  const scope = row.scope === "Range" ? "Range" : "Ip";
  return {
    id: row.id,
    blockId: row.block_id,
    scope,
    value: row.value,
    origin,
    scenario,
    expiresAt: row.expires_at ?? Number.POSITIVE_INFINITY,
    tail: `","id":${row.id},"origin":${JSON.stringify(origin)},"scenario":${JSON.stringify(scenario)},"scope":"${scope}","type":"ban","value":${JSON.stringify(row.value)}}`,
  };
};

/** One decision's JSON at `now`. */
export const serializeDecision = (entry: DecisionEntry, now: number): string =>
  `{"duration":"${Number.isFinite(entry.expiresAt) ? goDuration(entry.expiresAt - now) : NEVER_EXPIRES_DURATION}${entry.tail}`;

export const serializeList = (entries: readonly DecisionEntry[], now: number): string => {
  if (entries.length === 0) return "[]";
  let out = "[";
  for (let i = 0; i < entries.length; i++) out += (i ? "," : "") + serializeDecision(entries[i]!, now);
  return `${out}]`;
};

/** The filters of /v1/decisions and /v1/decisions/stream that do not locate a value. */
export type DecisionFilter = {
  scopes?: ReadonlySet<string> | undefined;
  origins?: ReadonlySet<string> | undefined;
  scenariosContaining?: readonly string[] | undefined;
  scenariosNotContaining?: readonly string[] | undefined;
  /** false when the request asked for a type other than ban: nothing matches. */
  typeMatches?: boolean | undefined;
};

const commaList = (value: string | undefined): string[] =>
  value === undefined ? [] : value.split(",").map((s) => s.trim()).filter(Boolean);

export const parseFilter = (q: { scopes?: string; origins?: string; scenarios_containing?: string; scenarios_not_containing?: string; type?: string }, defaultScopes?: string): DecisionFilter => {
  const scopes = commaList(q.scopes ?? defaultScopes).map((s) => s.toLowerCase());
  const origins = commaList(q.origins);
  const containing = commaList(q.scenarios_containing).map((s) => s.toLowerCase());
  const notContaining = commaList(q.scenarios_not_containing).map((s) => s.toLowerCase());
  return {
    ...(scopes.length ? { scopes: new Set(scopes) } : {}),
    ...(origins.length ? { origins: new Set(origins) } : {}),
    ...(containing.length ? { scenariosContaining: containing } : {}),
    ...(notContaining.length ? { scenariosNotContaining: notContaining } : {}),
    ...(q.type !== undefined && q.type !== "" ? { typeMatches: q.type.toLowerCase() === "ban" } : {}),
  };
};

export const isTrivialFilter = (f: DecisionFilter): boolean =>
  !f.origins && !f.scenariosContaining && !f.scenariosNotContaining && f.typeMatches !== false && (!f.scopes || (f.scopes.has("ip") && f.scopes.has("range")));

export const matchesFilter = (e: DecisionEntry, f: DecisionFilter): boolean => {
  if (f.typeMatches === false) return false;
  if (f.scopes && !f.scopes.has(e.scope === "Ip" ? "ip" : "range")) return false;
  if (f.origins && !f.origins.has(e.origin)) return false;
  if (f.scenariosContaining || f.scenariosNotContaining) {
    const scenario = e.scenario.toLowerCase();
    if (f.scenariosContaining && !f.scenariosContaining.some((w) => scenario.includes(w))) return false;
    if (f.scenariosNotContaining && f.scenariosNotContaining.some((w) => scenario.includes(w))) return false;
  }
  return true;
};

/** The live decisions of this node, by block id, as of `seq` in the change sequence. */
export class DecisionMirror {
  private byBlock = new Map<string, DecisionEntry>();
  seq = -1;

  get loaded(): boolean {
    return this.seq >= 0;
  }

  get size(): number {
    return this.byBlock.size;
  }

  /** Applies rows read in one snapshot whose highest visible sequence value was `seq`. */
  apply(rows: readonly DecisionRow[], seq: number, now: number): void {
    for (const row of rows) {
      const ended = row.deleted_seq !== null || (row.expires_at !== null && row.expires_at <= now);
      if (ended) this.byBlock.delete(row.block_id);
      else this.byBlock.set(row.block_id, toEntry(row));
    }
    if (seq > this.seq) this.seq = seq;
  }

  /** Drops entries whose expiry passed (they stay out of answers anyway; this bounds memory). */
  prune(now: number): void {
    for (const [id, e] of this.byBlock) if (e.expiresAt <= now) this.byBlock.delete(id);
  }

  get(blockId: string): DecisionEntry | undefined {
    return this.byBlock.get(blockId);
  }

  /** Live entries at `now` matching the filter. */
  live(now: number, filter: DecisionFilter): DecisionEntry[] {
    const out: DecisionEntry[] = [];
    const trivial = isTrivialFilter(filter);
    for (const e of this.byBlock.values()) if (e.expiresAt > now && (trivial || matchesFilter(e, filter))) out.push(e);
    return out;
  }

  values(): IterableIterator<DecisionEntry> {
    return this.byBlock.values();
  }
}
