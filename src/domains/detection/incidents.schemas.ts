// API shapes of incidents: the detections the sentinel (or a CrowdSec alert) opened for a source.
import { z } from "zod";
import { paginationQuery, pageSchema } from "../../lib/pagination.ts";
import { SEVERITIES } from "./classify.ts";

export const INCIDENT_STATUSES = ["open", "resolved"] as const;

export const incidentSchema = z
  .object({
    id: z.uuid(),
    source_ip: z.string(),
    threat: z.string().describe("brute_force, credential_stuffing, port_scan, malware_download, command_execution, or a CrowdSec scenario's threat"),
    severity: z.enum(SEVERITIES),
    status: z.enum(INCIDENT_STATUSES),
    opened_at: z.string(),
    updated_at: z.string(),
    last_event_at: z.string(),
    evidence: z
      .record(z.string(), z.unknown())
      .describe("counts in the detection window, the last event ids (at most 50), sensors, and the response (the action request, or the policy's denial)"),
    action_request_id: z.uuid().nullable().describe("the block_entity request raised for this incident, if any"),
    resolved_at: z.string().nullable(),
    resolved_by: z.string().nullable(),
  })
  .meta({ id: "Incident" });
export type IncidentView = z.infer<typeof incidentSchema>;

export const listIncidentsQuery = z.strictObject({
  ...paginationQuery,
  status: z.enum(INCIDENT_STATUSES).optional(),
  severity: z.enum(SEVERITIES).optional(),
  source_ip: z.string().max(64).optional().describe("an IPv4 or IPv6 address (any spelling; compared in canonical form)"),
  threat: z.string().max(64).optional(),
});
export type ListIncidentsQuery = z.infer<typeof listIncidentsQuery>;

export const resolveIncidentBody = z.strictObject({ note: z.string().max(2000).default("") }).nullish();

export const incidentPageSchema = pageSchema(incidentSchema).meta({ id: "IncidentPage" });

export const incidentCountsSchema = z.object({
  total_open: z.number().int(),
  critical: z.number().int(),
  high: z.number().int(),
  medium: z.number().int(),
  low: z.number().int(),
});
export type IncidentCounts = z.infer<typeof incidentCountsSchema>;
