// Incidents: one open per (source, threat), opened or refreshed by the sentinel (and by CrowdSec
// alerts through it), resolved by an analyst. Opening, escalating, linking a response and resolving
// are audited in their transaction; refreshing the running counts of an open incident is derived
// data (like the telemetry rollups) and is not audited each time (docs/decisions/0008-detection.md).
import type { Database, Tx } from "../../db/client.ts";
import { defineErrors, validationError } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { normalizeIp } from "../../lib/ip.ts";
import { decodeCursor, toPage, type Page } from "../../lib/pagination.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { actorName, requirePermission, type Actor } from "../identity/principal.ts";
import { maxSeverity, severityRank, type Severity } from "./classify.ts";
import type { IncidentRow, IncidentsRepo } from "./incidents.repo.ts";
import type { IncidentCounts, IncidentView, ListIncidentsQuery } from "./incidents.schemas.ts";

export const INCIDENT_ERRORS = defineErrors({
  INCIDENT_NOT_FOUND: { status: 404, title: "Incident not found" },
  INCIDENT_ALREADY_RESOLVED: { status: 409, title: "The incident is already resolved" },
});

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const iso = (d: Date | null) => d?.toISOString() ?? null;

export const toIncidentView = (row: IncidentRow): IncidentView => ({
  id: row.id,
  source_ip: row.sourceIp,
  threat: row.threat,
  severity: row.severity as Severity,
  status: row.status as IncidentView["status"],
  opened_at: row.openedAt.toISOString(),
  updated_at: row.updatedAt.toISOString(),
  last_event_at: row.lastEventAt.toISOString(),
  evidence: row.evidence as Record<string, unknown>,
  action_request_id: row.actionRequestId,
  resolved_at: iso(row.resolvedAt),
  resolved_by: row.resolvedBy,
});

/** What a detection says about a source now. */
export type DetectionReport = {
  sourceIp: string;
  threat: string;
  severity: Severity;
  lastEventAt: Date;
  /** replaces the evidence's detection part; the `response` key (what was done) is kept */
  evidence: Record<string, unknown>;
};

/** What was done about an incident: the action request raised, or why none was. */
export type IncidentResponse = {
  action_request_id: string | null;
  /** the request's status, or "denied" (the policy said DENY), or "already_blocked" */
  status: string;
  outcome: string | null;
  explanation: string;
  decision_id: string | null;
  at: string;
};

type Deps = { db: Database; repo: IncidentsRepo; audit: Pick<AuditService, "append">; clock: Clock };

export const incidentsService = ({ db, repo, audit, clock }: Deps) => {
  const load = async (id: string, tx?: Tx): Promise<IncidentRow> => {
    const row = UUID_RE.test(id) ? await repo.get(id, tx) : undefined;
    if (!row) throw INCIDENT_ERRORS.INCIDENT_NOT_FOUND(`no incident with id ${id}`);
    return row;
  };

  const listIncidents = async (actor: Actor, query: ListIncidentsQuery): Promise<Page<IncidentView>> => {
    requirePermission(actor, "events:read");
    let sourceIp: string | undefined;
    if (query.source_ip !== undefined) {
      sourceIp = normalizeIp(query.source_ip) ?? undefined;
      if (!sourceIp) throw validationError([{ path: "source_ip", message: "not an IPv4 or IPv6 address" }]);
    }
    const rows = await repo.list(
      { status: query.status, severity: query.severity, sourceIp, threat: query.threat },
      query.limit + 1,
      decodeCursor(query.cursor),
    );
    return toPage(rows, query.limit, (r) => ({ t: r.openedAt.toISOString(), id: r.id }), toIncidentView);
  };

  const getIncident = async (actor: Actor, id: string): Promise<IncidentView> => {
    requirePermission(actor, "events:read");
    return toIncidentView(await load(id));
  };

  const resolveIncident = async (actor: Actor, id: string, note = ""): Promise<IncidentView> => {
    requirePermission(actor, "events:triage");
    const existing = await load(id);
    return toIncidentView(
      await db.transaction(async (tx) => {
        const now = clock.now();
        const row = await repo.resolve(id, now, actorName(actor), tx);
        if (!row)
          throw INCIDENT_ERRORS.INCIDENT_ALREADY_RESOLVED(`incident ${id} was resolved by ${existing.resolvedBy ?? "someone"} at ${iso(existing.resolvedAt) ?? "?"}`);
        await audit.append(tx, actor, {
          action: "detection.incident.resolved",
          target: { type: "incident", id },
          before: { status: "open" },
          after: { status: "resolved", source_ip: row.sourceIp, threat: row.threat, severity: row.severity },
          details: note ? { note } : {},
        });
        return row;
      }),
    );
  };

  /** Open incidents by severity and when one last changed (the dashboard; the partial index incidents_open). */
  const openCounts = async (actor: Actor): Promise<{ counts: IncidentCounts; lastUpdate: Date | null }> => {
    requirePermission(actor, "events:read");
    const counts: IncidentCounts = { total_open: 0, critical: 0, high: 0, medium: 0, low: 0 };
    let lastUpdate: Date | null = null;
    for (const { severity, count, lastUpdate: at } of await repo.openBySeverity()) {
      const n = Number(count);
      counts.total_open += n;
      if (severity in counts) counts[severity as Severity] += n;
      // max() comes back as text from a raw aggregate on some drivers.
      const d = at === null ? null : new Date(at);
      if (d && (!lastUpdate || d > lastUpdate)) lastUpdate = d;
    }
    return { counts, lastUpdate };
  };

  /**
   * Opens the incident of (source, threat), or refreshes the open one: severity only rises, the
   * evidence's detection part is replaced, what was done (`response`) is kept.
   */
  const report = async (actor: Actor, r: DetectionReport): Promise<{ incident: IncidentRow; opened: boolean }> => {
    requirePermission(actor, "events:triage");
    return db.transaction(async (tx) => {
      const now = clock.now();
      for (let attempt = 0; ; attempt++) {
        const open = await repo.lockOpen(r.sourceIp, r.threat, tx);
        if (open) {
          const severity = maxSeverity(open.severity as Severity, r.severity);
          const previous = open.evidence as Record<string, unknown>;
          const evidence = { ...r.evidence, ...(previous.response ? { response: previous.response } : {}) };
          const lastEventAt = r.lastEventAt > open.lastEventAt ? r.lastEventAt : open.lastEventAt;
          const updated = (await repo.update(open.id, { severity, evidence, lastEventAt, updatedAt: now }, tx))!;
          if (severityRank(severity) > severityRank(open.severity as Severity))
            await audit.append(tx, actor, {
              action: "detection.incident.escalated",
              target: { type: "incident", id: open.id },
              before: { severity: open.severity },
              after: { severity, source_ip: r.sourceIp, threat: r.threat },
              details: { reason: String(r.evidence.reason ?? "") },
            });
          return { incident: updated, opened: false };
        }
        const inserted = await repo.insertOpen(
          {
            id: uuidv7(),
            sourceIp: r.sourceIp,
            threat: r.threat,
            severity: r.severity,
            status: "open",
            openedAt: now,
            updatedAt: now,
            lastEventAt: r.lastEventAt,
            evidence: r.evidence,
            actionRequestId: null,
            resolvedAt: null,
            resolvedBy: null,
          },
          tx,
        );
        if (inserted) {
          await audit.append(tx, actor, {
            action: "detection.incident.opened",
            target: { type: "incident", id: inserted.id },
            after: { status: "open", source_ip: r.sourceIp, threat: r.threat, severity: r.severity },
            details: { evidence: r.evidence },
          });
          return { incident: inserted, opened: true };
        }
        // Another writer opened it between our read and insert: lock and refresh that one.
        if (attempt > 2) throw new Error(`incident for ${r.sourceIp}/${r.threat} could neither be read nor inserted`);
      }
    });
  };

  /** Records what was done about an incident (the request raised, the policy's denial, an existing block). */
  const recordResponse = async (actor: Actor, incidentId: string, response: IncidentResponse): Promise<IncidentRow> => {
    requirePermission(actor, "events:triage");
    return db.transaction(async (tx) => {
      const row = await load(incidentId, tx);
      const evidence = { ...(row.evidence as Record<string, unknown>), response };
      const updated = (await repo.update(
        incidentId,
        { evidence, updatedAt: clock.now(), ...(response.action_request_id ? { actionRequestId: response.action_request_id } : {}) },
        tx,
      ))!;
      await audit.append(tx, actor, {
        action: response.status === "denied" ? "detection.incident.request_denied" : "detection.incident.responded",
        target: { type: "incident", id: incidentId },
        before: { action_request_id: row.actionRequestId },
        after: { action_request_id: updated.actionRequestId, source_ip: row.sourceIp, threat: row.threat },
        details: { response },
      });
      return updated;
    });
  };

  return { listIncidents, getIncident, resolveIncident, openCounts, report, recordResponse };
};
export type IncidentsService = ReturnType<typeof incidentsService>;
