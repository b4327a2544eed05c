// The security dashboard's shape: exactly PACK TT's structure, plus `cidrs` in blocklist.
import { z } from "zod";
import { SECURITY_MODES } from "../policy/policy.schemas.ts";

const count = z.number().int().min(0);

export const dashboardSchema = z
  .strictObject({
    timestamp: z.string().describe("when this snapshot was taken (ISO 8601, UTC)"),
    security_mode: z.strictObject({ mode: z.enum(SECURITY_MODES), updated_at: z.string() }),
    incidents: z.strictObject({ total_open: count, critical: count, high: count, medium: count, low: count }),
    blocklist: z.strictObject({
      total_blocked: count,
      ips: count,
      users: count,
      api_keys: count,
      cidrs: count.describe("CIDR range blocks (counted in total_blocked; not in the seed's list)"),
    }),
    honeypot: z.strictObject({
      total_instances: count,
      active_instances: count,
      recent_events: count.describe("events received in the last 24 hours"),
      threats_detected: count.describe("of those, events with a detected threat"),
    }),
    action_requests: z.strictObject({ total_pending: count, pending_by_type: z.record(z.string(), count) }),
    last_update: z.string().describe("the latest change among the policy and the open incidents (ISO 8601)"),
  })
  .meta({ id: "SecurityDashboard" });
export type Dashboard = z.infer<typeof dashboardSchema>;
