// The security dashboard: one snapshot of the policy mode, open incidents, active blocks, honeypot
// activity and pending action requests. It never scans events: honeypot numbers come from the
// sensors' per-minute rollups, blocks from the in-memory enforcement index, incidents and pending
// requests from partial indexes, so its cost does not grow with the number of stored events.
import type { Clock } from "../../lib/time.ts";
import type { ActionsService } from "../actions/actions.service.ts";
import type { BlocklistService } from "../blocklist/blocklist.service.ts";
import type { IncidentsService } from "../detection/incidents.service.ts";
import { requirePermission, systemActor, type Actor } from "../identity/principal.ts";
import type { PolicyService } from "../policy/policy.service.ts";
import type { Dashboard } from "./dashboard.schemas.ts";

export type HoneypotSummary = { total_instances: number; active_instances: number; recent_events: number; threats_detected: number };
/** The part of the sensors service the dashboard reads. */
export type HoneypotSummarySource = { summary(now: Date): Promise<HoneypotSummary> };

type Deps = {
  policy: Pick<PolicyService, "getPolicy">;
  incidents: Pick<IncidentsService, "openCounts">;
  blocklist: Pick<BlocklistService, "activeCounts">;
  actions: Pick<ActionsService, "pendingCounts">;
  sensors: HoneypotSummarySource;
  clock: Clock;
};

export const dashboardService = ({ policy, incidents, blocklist, actions, sensors, clock }: Deps) => {
  // Aggregate counts only: whoever may read events may see them (every role can).
  const reader = systemActor("dashboard");

  const snapshot = async (actor: Actor): Promise<Dashboard> => {
    requirePermission(actor, "events:read");
    const now = clock.now();
    const [current, open, honeypot, pending] = await Promise.all([
      policy.getPolicy(reader),
      incidents.openCounts(reader),
      sensors.summary(now),
      actions.pendingCounts(reader),
    ]);
    const blocks = blocklist.activeCounts(reader);
    const policyAt = new Date(current.updated_at);
    const lastUpdate = open.lastUpdate && open.lastUpdate > policyAt ? open.lastUpdate : policyAt;
    return {
      timestamp: now.toISOString(),
      security_mode: { mode: current.default_mode, updated_at: current.updated_at },
      incidents: open.counts,
      blocklist: {
        total_blocked: blocks.ip + blocks.cidr + blocks.user + blocks.api_key,
        ips: blocks.ip,
        users: blocks.user,
        api_keys: blocks.api_key,
        cidrs: blocks.cidr,
      },
      honeypot: {
        total_instances: Number(honeypot.total_instances),
        active_instances: Number(honeypot.active_instances),
        recent_events: Number(honeypot.recent_events),
        threats_detected: Number(honeypot.threats_detected),
      },
      action_requests: { total_pending: Object.values(pending).reduce((a, b) => a + b, 0), pending_by_type: pending },
      last_update: lastUpdate.toISOString(),
    };
  };

  return { snapshot };
};
export type DashboardService = ReturnType<typeof dashboardService>;
