// API shapes of the security policy (PACK TQ field names).
import { z } from "zod";

export const SECURITY_MODES = ["normal", "elevated", "lockdown"] as const;
export type SecurityMode = (typeof SECURITY_MODES)[number];

export const policySchema = z
  .object({
    default_mode: z.enum(SECURITY_MODES),
    auto_elevate: z.boolean(),
    auto_lockdown: z.boolean(),
    max_failed_auth: z.number().int(),
    max_scan_events: z.number().int(),
    detection_window_minutes: z.number().int(),
    notes: z.string(),
    updated_at: z.string(),
    updated_by: z.string(),
  })
  .meta({ id: "SecurityPolicy" });
export type Policy = z.infer<typeof policySchema>;

export const policyUpdateSchema = z
  .strictObject({
    default_mode: z.enum(SECURITY_MODES).optional(),
    auto_elevate: z.boolean().optional(),
    auto_lockdown: z.boolean().optional(),
    max_failed_auth: z.number().int().min(1).max(10_000).optional(),
    max_scan_events: z.number().int().min(1).max(1_000_000).optional(),
    detection_window_minutes: z.number().int().min(1).max(1440).optional(),
    notes: z.string().max(2000).optional(),
  })
  .refine((v) => Object.keys(v).length > 0, { message: "give at least one field to change" })
  .meta({ id: "SecurityPolicyUpdate" });
export type PolicyUpdate = z.infer<typeof policyUpdateSchema>;
