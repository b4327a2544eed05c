// HTTP surface of the blocklist (PACK TQ): create, list, show, deactivate, the enforcement check
// and the plain-text feed. Thin: schema, permission, one service call.
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { actorOf } from "../../app/plugins.ts";
import { problems } from "../../app/schemas.ts";
import type { BlocklistService } from "./blocklist.service.ts";
import {
  blockPageSchema,
  blockSchema,
  checkQuery,
  checkResultSchema,
  createBlockSchema,
  deactivateBlockSchema,
  listBlocksQuery,
} from "./blocklist.schemas.ts";

const idParams = z.strictObject({ id: z.string().max(64) });

export const blocklistRoutes: FastifyPluginAsyncZod<{ blocklist: BlocklistService }> = async (app, { blocklist }) => {
  app.post(
    "/security/policy/blocks",
    {
      config: { permission: "blocklist:write" },
      schema: {
        tags: ["blocklist"],
        summary: "Block an IP, CIDR range, user or API key",
        body: createBlockSchema,
        response: { 201: blockSchema, ...problems(400, 409, 415, 422) },
      },
    },
    async (request, reply) => reply.code(201).send(await blocklist.createBlock(actorOf(request), request.body)),
  );
  app.get(
    "/security/policy/blocks",
    {
      config: { permission: "blocklist:read" },
      schema: { tags: ["blocklist"], summary: "List blocks", querystring: listBlocksQuery, response: { 200: blockPageSchema, ...problems(400) } },
    },
    async (request) => blocklist.listBlocks(actorOf(request), request.query),
  );
  app.get(
    "/security/policy/blocks.txt",
    {
      config: { permission: "blocklist:check", rateClass: "enforcement" },
      schema: {
        tags: ["blocklist"],
        summary: "Active IP and CIDR blocks, one per line (for ipset and nginx/HAProxy deny maps)",
        response: { 200: z.string(), ...problems() },
      },
    },
    async (request, reply) => reply.type("text/plain; charset=utf-8").serializer((s: unknown) => s as string).send(blocklist.ipFeed(actorOf(request))),
  );
  app.get(
    "/security/policy/blocks/:id",
    {
      config: { permission: "blocklist:read" },
      schema: { tags: ["blocklist"], summary: "One block", params: idParams, response: { 200: blockSchema, ...problems(404) } },
    },
    async (request) => blocklist.getBlock(actorOf(request), request.params.id),
  );
  app.post(
    "/security/policy/blocks/:id/deactivate",
    {
      config: { permission: "blocklist:write" },
      schema: {
        tags: ["blocklist"],
        summary: "Deactivate a block (it stops matching at once)",
        params: idParams,
        body: deactivateBlockSchema,
        response: { 200: blockSchema, ...problems(404, 409) },
      },
    },
    async (request) => blocklist.deactivateBlock(actorOf(request), request.params.id, request.body?.reason),
  );
  app.get(
    "/security/policy/check",
    {
      config: { permission: "blocklist:check", rateClass: "enforcement" },
      // The hot path of every enforcement point: the service builds this body with exactly the schema's
      // fields, so plain JSON.stringify replaces the zod encode pass (~5% of the route's cost).
      serializerCompiler: () => (data) => JSON.stringify(data),
      schema: {
        tags: ["blocklist"],
        summary: "Is this IP, user or API key blocked? Answered from memory.",
        querystring: checkQuery,
        response: { 200: checkResultSchema, ...problems(400) },
      },
    },
    async (request) => blocklist.check(actorOf(request), request.query),
  );
};
