// API shapes of the sensor registry and telemetry (PACK TS field names: name, honeypot_type,
// location, source_ip, event_type, detected_threat, processed ...).
import { z } from "zod";
import { paginationQuery, pageSchema } from "../../lib/pagination.ts";

export const EVENT_TYPE_NAMES = ["connection", "auth_attempt", "exploitation", "scan", "command", "session", "other"] as const;

const boolQuery = z.enum(["true", "false"]).transform((v) => v === "true");

export const keyInfoSchema = z.object({
  prefix: z.string().describe("the key's visible start (phk_ + 8 characters); the key itself is never shown again"),
  created_at: z.string(),
  expires_at: z.string().nullable().describe("set by a rotation: the end of the previous key's grace period"),
  revoked_at: z.string().nullable(),
  status: z.enum(["active", "expiring", "expired", "revoked"]),
});

export const instanceSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    honeypot_type: z.string(),
    location: z.string(),
    metadata: z.record(z.string(), z.unknown()),
    active: z.boolean(),
    created_at: z.string(),
    created_by: z.string(),
    updated_at: z.string(),
    deactivated_at: z.string().nullable(),
    deactivated_by: z.string().nullable(),
    last_event_at: z.string().nullable(),
    keys: z.array(keyInfoSchema),
  })
  .meta({ id: "HoneypotInstance" });
export type Instance = z.infer<typeof instanceSchema>;

export const instanceWithKeySchema = instanceSchema
  .extend({
    api_key: z.string().describe("the sensor's key, shown this once: send it as X-HONEYPOT-KEY (or Authorization: Splunk <key> to the HEC endpoints)"),
  })
  .meta({ id: "HoneypotInstanceWithKey" });

const metadataSchema = z
  .record(z.string().max(100), z.unknown())
  .refine((m) => JSON.stringify(m).length <= 8_192, { message: "at most 8 KiB of JSON" });

export const createInstanceSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    honeypot_type: z
      .string()
      .trim()
      .toLowerCase()
      .regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, "lower-case letters, digits, _ . - (e.g. cowrie, opencanary)"),
    location: z.string().trim().max(200).optional(),
    metadata: metadataSchema.optional(),
  })
  .meta({ id: "HoneypotInstanceCreate" });
export type CreateInstanceInput = z.infer<typeof createInstanceSchema>;

export const listInstancesQuery = z.strictObject({
  ...paginationQuery,
  active: boolQuery.optional(),
  honeypot_type: z.string().max(64).optional(),
});
export type ListInstancesQuery = z.infer<typeof listInstancesQuery>;

export const deactivateInstanceSchema = z.strictObject({ reason: z.string().max(1000).default("") }).nullish();
export const rotateKeySchema = z
  .strictObject({
    grace_seconds: z.number().int().min(0).max(90 * 86_400).optional().describe("how long the previous key keeps working; default sensors.keyRotationGraceSeconds"),
  })
  .nullish();

export const instancePageSchema = pageSchema(instanceSchema);

export const itemResultSchema = z.object({
  index: z.number().int(),
  status: z.enum(["accepted", "duplicate", "rejected"]),
  id: z.string().optional().describe("the stored event's id (accepted, or the earlier copy of a duplicate)"),
  code: z.string().optional(),
  reason: z.string().optional(),
  path: z.string().optional().describe("the offending field inside the item"),
});
export type ItemResult = z.infer<typeof itemResultSchema>;

export const batchResultSchema = z
  .object({
    total: z.number().int(),
    accepted: z.number().int(),
    duplicate: z.number().int(),
    rejected: z.number().int(),
    results: z.array(itemResultSchema),
  })
  .meta({ id: "HoneypotBatchResult" });

export const ingestResultSchema = z.object({ id: z.string(), status: z.enum(["accepted", "duplicate"]) }).meta({ id: "HoneypotIngestResult" });

export const nativeEventSchema = z
  .object({
    source_ip: z.string(),
    event_type: z.enum(EVENT_TYPE_NAMES),
    payload: z.record(z.string(), z.unknown()).optional(),
    detected_threat: z.string().nullable().optional(),
    event_id: z.string().min(1).max(200).optional().describe("the sender's id for the event: a retry with the same id is a duplicate"),
    occurred_at: z.string().optional().describe("ISO 8601; at most 5 minutes in the future; default: the time it was received"),
  })
  .meta({ id: "HoneypotEvent" });

export const eventItemSchema = z
  .object({
    id: z.string(),
    sensor_id: z.string(),
    sensor_name: z.string().nullable(),
    source_ip: z.string(),
    event_type: z.enum(EVENT_TYPE_NAMES),
    detected_threat: z.string().nullable(),
    occurred_at: z.string(),
    received_at: z.string(),
    payload: z.record(z.string(), z.unknown()),
    credentials: z.record(z.string(), z.string()).nullable().describe("captured credentials: decrypted for telemetry:secrets, masked for everyone else"),
    raw: z.string().describe("the event as the sensor sent it (credential values redacted unless sensors.credentials is plain)"),
    processed: z.boolean(),
    processed_at: z.string().nullable(),
    processed_by: z.string().nullable(),
  })
  .meta({ id: "HoneypotEventRecord" });
export type EventItem = z.infer<typeof eventItemSchema>;
export const eventPageSchema = pageSchema(eventItemSchema);

export const listEventsQuery = z.strictObject({
  ...paginationQuery,
  sensor: z.uuid().optional().describe("a sensor id"),
  source_ip: z.string().max(64).optional(),
  event_type: z.enum(EVENT_TYPE_NAMES).optional(),
  threat: z.string().max(100).optional(),
  since: z.iso.datetime({ offset: true }).optional().describe("occurred at or after (ISO 8601)"),
  until: z.iso.datetime({ offset: true }).optional().describe("occurred before (ISO 8601)"),
  unprocessed_only: boolQuery.optional(),
});
export type ListEventsQuery = z.infer<typeof listEventsQuery>;
