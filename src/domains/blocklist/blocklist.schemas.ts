// API shapes of the blocklist (PACK TQ field names: entity_type, value, reason, expires_at, ...).
import { z } from "zod";
import { paginationQuery, pageSchema } from "../../lib/pagination.ts";

export const ENTITY_TYPES = ["ip", "cidr", "user", "api_key"] as const;
export type EntityType = (typeof ENTITY_TYPES)[number];

const isoDateTime = z.iso.datetime({ offset: true });

export const blockSchema = z
  .object({
    id: z.uuid(),
    entity_type: z.enum(ENTITY_TYPES),
    value: z.string(),
    reason: z.string(),
    created_by: z.string(),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    active: z.boolean().describe("false once deactivated or expired (exact to the instant of expiry)"),
    deactivated_at: z.string().nullable(),
    deactivated_by: z.string().nullable(),
    forced: z.boolean().describe("created with force: true over a guardrail"),
  })
  .meta({ id: "Block" });
export type Block = z.infer<typeof blockSchema>;

export const createBlockSchema = z
  .strictObject({
    entity_type: z.enum(ENTITY_TYPES),
    value: z.string().trim().min(1).max(256),
    reason: z.string().max(1000).default(""),
    expires_at: isoDateTime.optional().describe("ISO 8601 with offset; must be in the future"),
    force: z.boolean().default(false).describe("admin override of the protected-network and CIDR-breadth guardrails"),
  })
  .meta({ id: "BlockCreate" });
export type CreateBlockInput = z.infer<typeof createBlockSchema>;

export const listBlocksQuery = z.strictObject({
  ...paginationQuery,
  type: z.enum(ENTITY_TYPES).optional(),
  active: z.enum(["true", "false"]).transform((v) => v === "true").optional(),
  q: z.string().max(256).optional().describe("substring of the value"),
  created_from: isoDateTime.optional(),
  created_to: isoDateTime.optional(),
});
export type ListBlocksQuery = z.infer<typeof listBlocksQuery>;

export const blockPageSchema = pageSchema(blockSchema).meta({ id: "BlockPage" });

export const checkQuery = z
  .strictObject({
    ip: z.string().max(64).optional(),
    user: z.string().max(256).optional(),
    api_key: z.string().max(256).optional().describe("the key's visible prefix, e.g. pc_ab12cd34"),
  })
  .refine((q) => q.ip !== undefined || q.user !== undefined || q.api_key !== undefined, {
    message: "give ip, user or api_key",
  });
export type CheckQuery = z.infer<typeof checkQuery>;

export const checkMatchSchema = z.object({
  id: z.string(),
  type: z.enum(ENTITY_TYPES),
  value: z.string(),
  reason: z.string(),
  expires_at: z.string().nullable(),
});
export const checkResultSchema = z
  .object({ blocked: z.boolean(), matches: z.array(checkMatchSchema) })
  .meta({ id: "CheckResult" });
export type CheckResult = z.infer<typeof checkResultSchema>;

// Fastify hands a missing body over as null (curl -X POST with no data), so null is accepted too.
export const deactivateBlockSchema = z.strictObject({ reason: z.string().max(1000).optional() }).nullish();
