// HTTP surface of the security policy (PACK TQ): GET and partial-update POST.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { actorOf } from "../../app/plugins.ts";
import { problems } from "../../app/schemas.ts";
import type { PolicyService } from "./policy.service.ts";
import { policySchema, policyUpdateSchema } from "./policy.schemas.ts";

export const policyRoutes: FastifyPluginAsyncZod<{ policy: PolicyService }> = async (app, { policy }) => {
  app.get(
    "/security/policy/",
    {
      config: { permission: "policy:read" },
      schema: { tags: ["policy"], summary: "The security policy", response: { 200: policySchema, ...problems() } },
    },
    async (request) => policy.getPolicy(actorOf(request)),
  );
  app.post(
    "/security/policy/",
    {
      config: { permission: "policy:write" },
      schema: {
        tags: ["policy"],
        summary: "Change the security policy (partial update, audited with before/after)",
        body: policyUpdateSchema,
        response: { 200: policySchema, ...problems(400, 415) },
      },
    },
    async (request) => policy.updatePolicy(actorOf(request), request.body),
  );
};
