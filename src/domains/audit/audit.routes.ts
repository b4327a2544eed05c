// HTTP surface of the audit log: entries in order, signed checkpoints, the verifier key, and RFC 9162
// inclusion and consistency proofs, so an auditor can check the log without trusting this server.
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { actorOf } from "../../app/plugins.ts";
import { problems } from "../../app/schemas.ts";
import { pageSchema } from "../../lib/pagination.ts";
import type { AuditService } from "./audit.service.ts";
import type { TransparencyService } from "./transparency.service.ts";

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
    leaf: z.string().describe("the RFC 8785 canonical JSON this entry was hashed from"),
    leaf_hash: z.string().describe("base64 SHA-256(0x00 || leaf)"),
  })
  .meta({ id: "AuditEntry" });

const checkpointSchema = z
  .object({ tree_size: z.number().int(), root_hash: z.string(), note: z.string(), key_id: z.string(), created_at: z.string() })
  .meta({ id: "AuditCheckpoint" });

const isoDateTime = z.iso.datetime({ offset: true });
const index = () => z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const plainText = (s: unknown) => s as string;

export const auditRoutes: FastifyPluginAsyncZod<{ audit: AuditService; transparency: TransparencyService }> = async (
  app,
  { audit, transparency },
) => {
  app.get(
    "/audit/entries",
    {
      config: { permission: "audit:read" },
      schema: {
        tags: ["audit"],
        summary: "Audit entries in log order (oldest first); start/end select an index range [start, end)",
        querystring: z.strictObject({
          limit: z.coerce.number().int().min(1).max(1000).default(50),
          cursor: z.string().max(32).optional(),
          start: index().optional(),
          end: index().optional(),
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
          start: q.start,
          end: q.end,
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
      schema: { tags: ["audit"], summary: "One audit entry by index", params: z.strictObject({ index: index() }), response: { 200: entrySchema, ...problems(400, 404) } },
    },
    async (request) => audit.get(actorOf(request), request.params.index),
  );
  app.get(
    "/audit/checkpoint",
    {
      config: { permission: "audit:read" },
      schema: { tags: ["audit"], summary: "The latest signed checkpoint (C2SP signed note, text/plain)", response: { 200: z.string(), ...problems() } },
    },
    async (request, reply) => reply.type("text/plain; charset=utf-8").serializer(plainText).send(await transparency.latestCheckpoint(actorOf(request))),
  );
  app.post(
    "/audit/checkpoint",
    {
      config: { permission: "audit:checkpoint" },
      schema: { tags: ["audit"], summary: "Sign a checkpoint for the current tree now", response: { 200: checkpointSchema, ...problems() } },
    },
    async (request) => transparency.checkpointNow(actorOf(request)),
  );
  app.get(
    "/audit/checkpoints",
    {
      config: { permission: "audit:read" },
      schema: {
        tags: ["audit"],
        summary: "Checkpoint history, newest first; before= a tree size (next_cursor is the before= of the next page)",
        querystring: z.strictObject({
          before: index().optional(),
          cursor: index().optional().describe("next_cursor of the previous page (same as before=)"),
          limit: z.coerce.number().int().min(1).max(1000).default(50),
        }),
        response: { 200: pageSchema(checkpointSchema), ...problems(400) },
      },
    },
    async (request) => transparency.listCheckpoints(actorOf(request), request.query.cursor ?? request.query.before, request.query.limit),
  );
  app.get(
    "/audit/public-key",
    {
      config: { permission: "audit:read" },
      schema: { tags: ["audit"], summary: "The checkpoint verifier key (C2SP vkey: name+keyid+base64(0x01||key))", response: { 200: z.string(), ...problems() } },
    },
    async (_request, reply) => reply.type("text/plain; charset=utf-8").serializer(plainText).send(`${transparency.publicKey}\n`),
  );
  app.get(
    "/audit/proof/inclusion",
    {
      config: { permission: "audit:read" },
      schema: {
        tags: ["audit"],
        summary: "RFC 9162 inclusion proof of entry `index` in the tree of size `tree_size`",
        querystring: z.strictObject({ index: index(), tree_size: index() }),
        response: { 200: z.object({ index: z.number(), tree_size: z.number(), proof: z.array(z.string()) }), ...problems(400, 422) },
      },
    },
    async (request) => transparency.proveInclusion(actorOf(request), request.query.index, request.query.tree_size),
  );
  app.get(
    "/audit/proof/consistency",
    {
      config: { permission: "audit:read" },
      schema: {
        tags: ["audit"],
        summary: "RFC 9162 consistency proof between tree sizes `from` and `to`",
        querystring: z.strictObject({ from: index(), to: index() }),
        response: { 200: z.object({ from: z.number(), to: z.number(), proof: z.array(z.string()) }), ...problems(400, 422) },
      },
    },
    async (request) => transparency.proveConsistency(actorOf(request), request.query.from, request.query.to),
  );
};
