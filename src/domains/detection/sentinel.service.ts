// The sentinel: the system principal that watches ingested events, keeps per-source windows,
// opens incidents, and asks the action workflow for a block when a source crosses the policy's
// thresholds (and for set_mode elevated / lockdown when many sources do). It decides nothing itself:
// the policy engine decides each request like any other. At most one open block request per source
// (the database holds the open key), a DENY is recorded on the incident, and work is coalesced: a
// single worker per node processes the sources touched since its last pass.
import { AppError, validationError } from "../../lib/errors.ts";
import { normalizeIp } from "../../lib/ip.ts";
import type { Clock } from "../../lib/time.ts";
import type { ActionsService } from "../actions/actions.service.ts";
import type { BlocklistService } from "../blocklist/blocklist.service.ts";
import { systemActor, type Actor } from "../identity/principal.ts";
import type { Policy } from "../policy/policy.schemas.ts";
import type { PolicyService } from "../policy/policy.service.ts";
import { classifyEvent, classifySource, tripsBlock, type Detection, type Severity, type Thresholds } from "./classify.ts";
import type { IncidentResponse, IncidentsService } from "./incidents.service.ts";
import type { IncidentRow } from "./incidents.repo.ts";
import { DetectionWindows, ENTRIES_PER_SOURCE, type DetectionEvent, type SourceCounts } from "./windows.ts";

export type DetectionSettings = {
  enabled: boolean;
  /** distinct sources tripping within the window that make the sentinel ask for set_mode elevated */
  elevateSources: number;
  /** ... and for set_mode lockdown */
  lockdownSources: number;
  distinctUsernames: number;
  distinctPorts: number;
  maxTrackedSources: number;
  /** how long the blocks the sentinel asks for last */
  blockDurationSeconds: number;
};

/** The part of the sensors service the sentinel follows. */
export type SensorsFeed = {
  onIngested(listener: (events: DetectionEvent[]) => void): void;
  eventsSince(since: Date, afterId: string | null, limit: number): Promise<DetectionEvent[]>;
};

export type ProposeBlockInput = {
  sourceIp: string;
  threat: string;
  severity: Severity;
  /** who proposes: "sentinel", "crowdsec:<watcher>" ... */
  origin: string;
  reason: string;
  evidence: Record<string, unknown>;
  durationSeconds?: number;
};
export type ProposeBlockResult = { incidentId: string; actionRequestId: string | null; status: string | null };

type Deps = {
  incidents: IncidentsService;
  actions: Pick<ActionsService, "createRequest" | "findOpenRequest" | "getRequest">;
  policy: Pick<PolicyService, "getPolicy">;
  blocklist: Pick<BlocklistService, "check">;
  clock: Clock;
  settings: DetectionSettings;
  log?: { info?(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
};

/** Requests that ended without anyone deciding against them: the sentinel may ask again. */
const LAPSED = new Set(["expired", "cancelled"]);
const REPLAY_PAGE = 5_000;
const REPLAY_MAX_EVENTS = 1_000_000;
/** Live events held while the start-up replay runs (beyond it they are not counted: a later detection, never a wrong one). */
const REPLAY_BUFFER_MAX = 50_000;
const RECHECK_MS = 30_000;
const PRUNE_EVERY_MS = 60_000;
const blockKey = (ip: string) => `block_entity:ip:${ip}`;
/** Evidence another producer hands in is stored on the incident, its audit entry and the request. */
const EVIDENCE_MAX_CHARS = 32_768;
const EVIDENCE_MAX_KEYS = 64;

/**
 * Bounds evidence from another producer (a CrowdSec alert's decisions and events are as long as its
 * agent makes them): beyond EVIDENCE_MAX_CHARS of JSON, the largest values are replaced by a note of
 * their size, and at most EVIDENCE_MAX_KEYS keys are kept.
 */
export const boundEvidence = (evidence: Record<string, unknown>): Record<string, unknown> => {
  const total = JSON.stringify(evidence)?.length ?? 0;
  const keys = Object.keys(evidence);
  if (total <= EVIDENCE_MAX_CHARS && keys.length <= EVIDENCE_MAX_KEYS) return evidence;
  const sized = keys.slice(0, EVIDENCE_MAX_KEYS).map((k) => [k, evidence[k], JSON.stringify(evidence[k])?.length ?? 0] as const);
  const out: Record<string, unknown> = {};
  let used = 0;
  // Smallest first, so the many short facts (ids, scenario, times) survive one huge list.
  for (const [k, v, n] of [...sized].sort((a, b) => a[2] - b[2])) {
    if (used + n <= EVIDENCE_MAX_CHARS / 2) {
      out[k] = v;
      used += n;
    } else out[k] = { truncated: true, json_chars: n };
  }
  out.evidence_truncated = { json_chars: total, keys: keys.length };
  return out;
};

/** A Map used as a bounded LRU of small per-source facts. */
const remember = <V>(map: Map<string, V>, key: string, value: V, cap: number) => {
  map.delete(key);
  map.set(key, value);
  if (map.size > cap) map.delete(map.keys().next().value as string);
};

export const sentinelService = ({ incidents, actions, policy, blocklist, clock, settings, log }: Deps) => {
  const actor: Actor = systemActor("sentinel");
  // What the classifier needs and no more: a distinct count saturates one past its threshold.
  const windows = new DetectionWindows({
    maxSources: settings.maxTrackedSources,
    maxUsernames: settings.distinctUsernames + 1,
    maxPorts: settings.distinctPorts + 1,
    maxEntries: settings.maxTrackedSources * ENTRIES_PER_SOURCE,
  });
  // The window as last read from the policy (record() needs it synchronously).
  let windowMs = 10 * 60_000;
  const dirty = new Set<string>();
  let running: Promise<void> | undefined;
  let stopped = false;
  let lastPrune = 0;
  /** source -> when it last crossed a blocking threshold (auto-elevate counts these in the window) */
  const trippedAt = new Map<string, number>();
  /** source|threat -> a signature of the counts last written, so unchanged incidents are not rewritten */
  const written = new Map<string, string>();
  /** source -> when its response was last looked at */
  const responseCheckedAt = new Map<string, number>();
  const escalationRaised = { elevated: false, lockdown: false };
  // Start-up replay: live events arriving meanwhile wait here (and are not counted twice).
  let replaying = false;
  let liveDuringReplay: DetectionEvent[] = [];
  let droppedDuringReplay = 0;
  let evictedLogged = 0;
  let ready: Promise<void> = Promise.resolve();

  const thresholdsOf = (p: Policy): Thresholds => ({
    maxFailedAuth: p.max_failed_auth,
    maxScanEvents: p.max_scan_events,
    distinctUsernames: settings.distinctUsernames,
    distinctPorts: settings.distinctPorts,
  });

  const record = (events: readonly DetectionEvent[]) => {
    const now = clock.now().getTime();
    for (const e of events) if (windows.record(e, now, windowMs, classifyEvent(e))) dirty.add(e.sourceIp);
    // Sources evicted from the windows before the worker got to them have nothing to report; the
    // sweep at twice the cap keeps the set within the windows' own bound at O(1) per event amortised.
    if (dirty.size > 2 * settings.maxTrackedSources) for (const ip of dirty) if (!windows.has(ip)) dirty.delete(ip);
  };

  /** The sensors domain's after-commit listener: counts, then lets the worker run. */
  const observe = (events: readonly DetectionEvent[]) => {
    if (!settings.enabled || stopped || events.length === 0) return;
    if (replaying) {
      const room = REPLAY_BUFFER_MAX - liveDuringReplay.length;
      if (room > 0) liveDuringReplay.push(...events.slice(0, room));
      droppedDuringReplay += Math.max(0, events.length - Math.max(room, 0));
      return;
    }
    record(events);
    schedule();
  };

  const schedule = () => {
    if (running || dirty.size === 0 || stopped) return;
    running = work().finally(() => {
      running = undefined;
      schedule();
    });
  };

  const work = async () => {
    while (dirty.size > 0 && !stopped) {
      const sources = [...dirty];
      dirty.clear();
      try {
        await pass(sources);
      } catch (err) {
        log?.error({ err, sources: sources.length }, "detection pass failed");
      }
    }
  };

  const evidenceOf = (counts: SourceCounts, d: Detection, p: Policy, t: Thresholds): Record<string, unknown> => ({
    origin: "sentinel",
    reason: d.reason,
    window_minutes: p.detection_window_minutes,
    counts: {
      failed_auth: counts.failedAuth,
      successful_auth: counts.successfulAuth,
      scan_events: counts.scanEvents,
      distinct_usernames: counts.distinctUsernames,
      distinct_ports: counts.distinctPorts,
      commands: counts.commands,
      downloads: counts.downloads,
      events: counts.events,
    },
    thresholds: { max_failed_auth: t.maxFailedAuth, max_scan_events: t.maxScanEvents, distinct_usernames: t.distinctUsernames, distinct_ports: t.distinctPorts },
    event_ids: counts.eventIds,
    sensors: counts.sensors,
    first_seen: counts.firstSeen.toISOString(),
    last_seen: counts.lastSeen.toISOString(),
  });

  const pass = async (sources: string[]) => {
    const p = await policy.getPolicy(actor);
    windowMs = p.detection_window_minutes * 60_000;
    const t = thresholdsOf(p);
    const now = clock.now().getTime();
    for (const ip of sources) {
      if (stopped) return;
      const counts = windows.counts(ip, now, windowMs);
      if (!counts) continue;
      try {
        if (tripsBlock(counts, t)) remember(trippedAt, ip, now, settings.maxTrackedSources);
        for (const d of classifySource(counts, t)) {
          const key = `${ip}|${d.threat}`;
          const signature = `${d.severity}|${counts.events}|${counts.lastSeen.getTime()}`;
          if (written.get(key) === signature) continue;
          const evidence = evidenceOf(counts, d, p, t);
          const { incident } = await incidents.report(actor, { sourceIp: ip, threat: d.threat, severity: d.severity, lastEventAt: counts.lastSeen, evidence });
          remember(written, key, signature, settings.maxTrackedSources * 2);
          if (d.trips) await respond(incident, `sentinel: ${d.threat} from ${ip}: ${d.reason}`, evidence, settings.blockDurationSeconds, false);
        }
      } catch (err) {
        log?.error({ err, source: ip }, "detection failed for a source");
      }
    }
    if (now - lastPrune > PRUNE_EVERY_MS) {
      lastPrune = now;
      windows.prune(now, windowMs);
      for (const [ip, at] of trippedAt) if (at <= now - windowMs) trippedAt.delete(ip);
      if (windows.evicted > evictedLogged) {
        log?.warn({ evicted: windows.evicted - evictedLogged, sources: windows.size, entries: windows.entries }, "detection windows at their memory cap: least recently active sources dropped");
        evictedLogged = windows.evicted;
      }
    }
    await escalate(p, now);
  };

  /**
   * Asks for a block of the incident's source unless one is open (pending or approved), was
   * decided (executed, rejected, failed, denied by the policy), or the address is blocked already.
   */
  const respond = async (
    incident: IncidentRow,
    reason: string,
    evidence: Record<string, unknown>,
    durationSeconds: number,
    force: boolean,
  ): Promise<IncidentResponse | null> => {
    const ip = incident.sourceIp;
    const now = clock.now();
    const previous = (incident.evidence as { response?: IncidentResponse }).response;
    if (!force) {
      const checked = responseCheckedAt.get(ip);
      if (checked !== undefined && now.getTime() - checked < RECHECK_MS && previous) return previous;
    }
    remember(responseCheckedAt, ip, now.getTime(), settings.maxTrackedSources);
    if (previous?.status === "denied") return previous;
    if (incident.actionRequestId) {
      const linked = await actions.getRequest(actor, incident.actionRequestId);
      if (!LAPSED.has(linked.status)) return { ...(previous ?? responseOf(linked.id, linked.status, linked.decision, now)), status: linked.status };
    }
    const check = blocklist.check(actor, { ip });
    if (check.blocked) {
      if (previous?.status === "already_blocked") return previous;
      const response: IncidentResponse = {
        action_request_id: null,
        status: "already_blocked",
        outcome: null,
        explanation: `${ip} is already blocked (${check.matches.map((m) => m.id).join(", ")})`,
        decision_id: null,
        at: now.toISOString(),
      };
      await incidents.recordResponse(actor, incident.id, response);
      return response;
    }
    const requestEvidence = { ...evidence, incident_id: incident.id, threat: incident.threat };
    let response: IncidentResponse;
    try {
      const request = await actions.createRequest(
        actor,
        {
          action_type: "block_entity",
          payload: { entity_type: "ip", value: ip, duration_seconds: durationSeconds },
          reason: reason.slice(0, 2000),
          dry_run: true,
        },
        { evidence: requestEvidence, openKey: blockKey(ip) },
      );
      response = responseOf(request.id, request.status, request.decision, now);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      if (error.code === "ACTION_DENIED_BY_POLICY") {
        const d = (error.extra.decision ?? {}) as { decision_id?: string; explanation?: string };
        response = { action_request_id: null, status: "denied", outcome: "DENY", explanation: d.explanation ?? error.message, decision_id: d.decision_id ?? null, at: now.toISOString() };
      } else if (error.code === "ACTION_ALREADY_OPEN") {
        const open = await actions.findOpenRequest(actor, blockKey(ip));
        // Closed between the insert and this read: the next pass asks again.
        if (!open) return null;
        response = responseOf(open.id, open.status, open.decision, now);
      } else throw error;
    }
    await incidents.recordResponse(actor, incident.id, response);
    log?.info?.({ source: ip, incident: incident.id, response: { id: response.action_request_id, status: response.status, outcome: response.outcome } }, "sentinel responded to an incident");
    return response;
  };

  const responseOf = (id: string, status: string, decision: { outcome: string; explanation: string; decision_id: string }, now: Date): IncidentResponse => ({
    action_request_id: id,
    status,
    outcome: decision.outcome,
    explanation: decision.explanation,
    decision_id: decision.decision_id,
    at: now.toISOString(),
  });

  /** auto_elevate / auto_lockdown: many distinct sources tripping within the window. */
  const escalate = async (p: Policy, now: number) => {
    let tripped = 0;
    for (const at of trippedAt.values()) if (at > now - windowMs) tripped++;
    if (tripped < settings.elevateSources) escalationRaised.elevated = false;
    if (tripped < settings.lockdownSources) escalationRaised.lockdown = false;
    const want: ("elevated" | "lockdown")[] = [];
    if (p.auto_lockdown && p.default_mode !== "lockdown" && tripped >= settings.lockdownSources && !escalationRaised.lockdown) want.push("lockdown");
    if (p.auto_elevate && p.default_mode === "normal" && tripped >= settings.elevateSources && !escalationRaised.elevated) want.push("elevated");
    for (const mode of want) {
      escalationRaised[mode] = true;
      const sources = [...trippedAt].filter(([, at]) => at > now - windowMs).map(([ip]) => ip);
      try {
        const request = await actions.createRequest(
          actor,
          {
            action_type: "set_mode",
            payload: { mode },
            reason: `sentinel: ${tripped} distinct sources crossed the detection thresholds within ${p.detection_window_minutes} minutes (auto_${mode === "lockdown" ? "lockdown" : "elevate"} at ${mode === "lockdown" ? settings.lockdownSources : settings.elevateSources})`,
            dry_run: true,
          },
          { evidence: { origin: "sentinel", sources_tripped: tripped, sources: sources.slice(0, 50), window_minutes: p.detection_window_minutes }, openKey: `set_mode:${mode}` },
        );
        log?.warn({ mode, request: request.id, status: request.status, tripped }, "sentinel asked for a security mode change");
      } catch (error) {
        if (error instanceof AppError && (error.code === "ACTION_ALREADY_OPEN" || error.code === "ACTION_DENIED_BY_POLICY")) {
          log?.warn({ mode, code: error.code }, "sentinel's mode change request was not raised");
          continue;
        }
        log?.error({ err: error, mode }, "raising a mode change request failed");
      }
    }
  };

  /**
   * Contract for other producers of detections (CrowdSec alerts): opens or refreshes the incident
   * of (source, threat) and asks for at most one open block of the source.
   */
  const proposeBlock = async (input: ProposeBlockInput): Promise<ProposeBlockResult> => {
    const ip = normalizeIp(input.sourceIp);
    if (!ip) throw validationError([{ path: "sourceIp", message: "not an IPv4 or IPv6 address" }]);
    const threat = input.threat.trim().slice(0, 100) || "unknown";
    const now = clock.now();
    const evidence = { ...boundEvidence(input.evidence), origin: input.origin.slice(0, 200), reason: input.reason.slice(0, 2_000) };
    const { incident } = await incidents.report(actor, { sourceIp: ip, threat, severity: input.severity, lastEventAt: now, evidence });
    const response = await respond(incident, `${input.origin}: ${input.reason}`, evidence, input.durationSeconds ?? settings.blockDurationSeconds, true);
    return { incidentId: incident.id, actionRequestId: response?.action_request_id ?? null, status: response?.status ?? null };
  };

  /** Replays the current window from stored events (a restart does not forget an attack in progress). */
  const replay = async (feed: SensorsFeed) => {
    replaying = true;
    let total = 0;
    try {
      const p = await policy.getPolicy(actor);
      windowMs = p.detection_window_minutes * 60_000;
      const since = new Date(clock.now().getTime() - windowMs - 60_000);
      let afterId: string | null = null;
      for (;;) {
        const page = await feed.eventsSince(since, afterId, REPLAY_PAGE);
        const live = new Set(liveDuringReplay.map((e) => e.id));
        record(page.filter((e) => !live.has(e.id)));
        total += page.length;
        if (page.length < REPLAY_PAGE || stopped) break;
        if (total >= REPLAY_MAX_EVENTS) {
          log?.warn({ replayed: total }, "detection replay stopped at its cap; older events of the window are not counted");
          break;
        }
        afterId = page[page.length - 1]!.id;
      }
    } catch (err) {
      log?.error({ err }, "replaying the detection window failed; counting starts from now");
    } finally {
      replaying = false;
      const live = liveDuringReplay;
      liveDuringReplay = [];
      record(live);
      if (droppedDuringReplay) log?.warn({ dropped: droppedDuringReplay }, "events that arrived during the detection replay beyond its buffer were not counted");
      droppedDuringReplay = 0;
      schedule();
    }
    if (total) log?.info?.({ replayed: total, sources: windows.size }, "detection window replayed");
  };

  /** Follows the sensors' ingestion; the replay of the current window runs in the background (see ready()). */
  const start = (feed: SensorsFeed) => {
    if (!settings.enabled) return;
    feed.onIngested(observe);
    ready = replay(feed);
  };

  /** Resolves once the start-up replay is done and no detection work is pending (tests, shutdown). */
  const settle = async () => {
    await ready;
    while (running) await running;
  };

  const stop = async () => {
    await ready.catch(() => {});
    stopped = true;
    while (running) await running;
  };

  return { start, stop, settle, observe, proposeBlock };
};
export type SentinelService = ReturnType<typeof sentinelService>;
