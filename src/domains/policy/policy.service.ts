// The deployment's security policy (mode, escalation switches, detection thresholds). Every change
// is audited with before/after in the transaction that makes it.
import type { Database, Tx } from "../../db/client.ts";
import type { Clock } from "../../lib/time.ts";
import type { AuditService } from "../audit/audit.service.ts";
import { actorName, requirePermission, type Actor } from "../identity/principal.ts";
import type { PolicyRepo, PolicyRow } from "./policy.repo.ts";
import type { Policy, PolicyUpdate } from "./policy.schemas.ts";

export const toPolicy = (row: PolicyRow): Policy => ({
  default_mode: row.defaultMode as Policy["default_mode"],
  auto_elevate: row.autoElevate,
  auto_lockdown: row.autoLockdown,
  max_failed_auth: row.maxFailedAuth,
  max_scan_events: row.maxScanEvents,
  detection_window_minutes: row.detectionWindowMinutes,
  notes: row.notes,
  updated_at: row.updatedAt.toISOString(),
  updated_by: row.updatedBy,
});

const FIELD_TO_COLUMN = {
  default_mode: "defaultMode",
  auto_elevate: "autoElevate",
  auto_lockdown: "autoLockdown",
  max_failed_auth: "maxFailedAuth",
  max_scan_events: "maxScanEvents",
  detection_window_minutes: "detectionWindowMinutes",
  notes: "notes",
} as const satisfies Record<keyof PolicyUpdate, keyof PolicyRow>;

type Deps = { db: Database; repo: PolicyRepo; audit: Pick<AuditService, "append">; clock: Clock };

export const policyService = ({ db, repo, audit, clock }: Deps) => {
  const getPolicy = async (actor: Actor): Promise<Policy> => {
    requirePermission(actor, "policy:read");
    return toPolicy(await repo.get());
  };

  /** Partial update; a request that changes nothing changes nothing (no write, no audit entry). */
  /** `outer`: run inside the caller's transaction (the action workflow). */
  const updatePolicy = async (actor: Actor, update: PolicyUpdate, outer?: Tx): Promise<Policy> => {
    requirePermission(actor, "policy:write");
    const write = async (tx: Tx) => {
      const current = await repo.get(tx, true);
      const before = toPolicy(current);
      const patch: Partial<PolicyRow> = {};
      const changed: string[] = [];
      for (const [field, column] of Object.entries(FIELD_TO_COLUMN) as [keyof PolicyUpdate, keyof PolicyRow][]) {
        const value = update[field];
        if (value !== undefined && value !== current[column]) {
          (patch as Record<string, unknown>)[column] = value;
          changed.push(field);
        }
      }
      if (changed.length === 0) return before;
      const row = await repo.update({ ...patch, updatedAt: clock.now(), updatedBy: actorName(actor) }, tx);
      const after = toPolicy(row);
      await audit.append(tx, actor, {
        action: "policy.updated",
        target: { type: "security_policy", id: "1" },
        before,
        after,
        details: { changed },
      });
      return after;
    };
    return outer ? write(outer) : db.transaction(write);
  };

  return { getPolicy, updatePolicy };
};
export type PolicyService = ReturnType<typeof policyService>;
