// HTTP surface of the audit log: entries in order, filterable. Read-only by construction.
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { actorOf } from "../../app/plugins.ts";
import { problems } from "../../app/schemas.ts";
import { paginationQuery, pageSchema } from "../../lib/pagination.ts";
import type { AuditService } from "./audit.service.ts";

const entrySchema = z
  .object({
    index: z.number().int(),
    occurred_at: z.string(),
    actor: z.object({ type: z.string(), id: z.string(), name: z.string() }),
    action: z.string(),
    target: z.object({ type: z.string(), id: z.string() }).nullable(),
    request_id: z.string().nullable(),
    before: z.unknown(),
    after: z.unknown(),
    details: z.unknown(),
  })
  .meta({ id: "AuditEntry" });

const isoDateTime = z.iso.datetime({ offset: true });

export const auditRoutes: FastifyPluginAsyncZod<{ audit: AuditService }> = async (app, { audit }) => {
  app.get(
    "/audit/entries",
    {
      config: { permission: "audit:read" },
      schema: {
        tags: ["audit"],
        summary: "Audit entries in log order (oldest first)",
        querystring: z.strictObject({
          ...paginationQuery,
          action: z.string().max(128).optional(),
          target_type: z.string().max(64).optional(),
          target_id: z.string().max(128).optional(),
          from: isoDateTime.optional(),
          to: isoDateTime.optional(),
        }),
        response: { 200: pageSchema(entrySchema), ...problems(400) },
      },
    },
    async (request) => {
      const q = request.query;
      return audit.list(
        actorOf(request),
        {
          action: q.action,
          targetType: q.target_type,
          targetId: q.target_id,
          from: q.from ? new Date(q.from) : undefined,
          to: q.to ? new Date(q.to) : undefined,
        },
        q.limit,
        q.cursor,
      );
    },
  );
  app.get(
    "/audit/entries/:index",
    {
      config: { permission: "audit:read" },
      schema: {
        tags: ["audit"],
        summary: "One audit entry by index",
        params: z.strictObject({ index: z.coerce.number().int().min(0) }),
        response: { 200: entrySchema, ...problems(400, 404) },
      },
    },
    async (request) => audit.get(actorOf(request), request.params.index),
  );
};
