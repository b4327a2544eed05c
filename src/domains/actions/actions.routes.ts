// HTTP surface of the action workflow (PACK TR's four endpoints plus explicit verbs). Thin: schema,
// permission, one service call. Routes whose permission depends on the verb (the seed's status
// update, dry-run) declare actions:read and the service checks the verb's own permission.
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { actorOf } from "../../app/plugins.ts";
import { problems } from "../../app/schemas.ts";
import type { ActionsService } from "./actions.service.ts";
import { actionDetailSchema, actionPageSchema, actionSchema, createActionSchema, listActionsQuery, noteBody, statusBody } from "./actions.schemas.ts";

const idParams = z.strictObject({ id: z.string().max(64) });
const tags = ["actions"];

export const actionsRoutes: FastifyPluginAsyncZod<{ actions: ActionsService }> = async (app, { actions }) => {
  app.post(
    "/security/actions/",
    {
      config: { permission: "actions:request" },
      schema: {
        tags,
        summary: "Request an action; the policy decides at once (DENY answers 403 with the explanation)",
        body: createActionSchema,
        response: { 201: actionSchema, ...problems(400, 403, 404, 409, 415, 422) },
      },
    },
    async (request, reply) => reply.code(201).send(await actions.createRequest(actorOf(request), request.body)),
  );
  app.get(
    "/security/actions/",
    {
      config: { permission: "actions:read" },
      schema: { tags, summary: "List action requests, newest first", querystring: listActionsQuery, response: { 200: actionPageSchema, ...problems(400) } },
    },
    async (request) => actions.listRequests(actorOf(request), request.query),
  );
  app.get(
    "/security/actions/:id",
    {
      config: { permission: "actions:read" },
      schema: {
        tags,
        summary: "One request with its decision, dry-run report, signed verdicts, execution result, history and webhook deliveries",
        params: idParams,
        response: { 200: actionDetailSchema, ...problems(404) },
      },
    },
    async (request) => actions.getRequest(actorOf(request), request.params.id),
  );
  app.post(
    "/security/actions/:id",
    {
      config: { permission: "actions:read" },
      schema: {
        tags,
        summary: "PACK TR status update: approved (needs actions:approve), rejected (actions:approve) or executed (actions:execute)",
        params: idParams,
        body: statusBody,
        response: { 200: actionSchema, ...problems(400, 403, 404, 409, 415, 422) },
      },
    },
    async (request) => actions.setStatus(actorOf(request), request.params.id, request.body),
  );
  app.post(
    "/security/actions/:id/dry-run",
    {
      config: { permission: "actions:read" },
      schema: {
        tags,
        summary: "Recompute and record the dry-run report from live data (needs actions:request or actions:approve)",
        params: idParams,
        response: { 200: actionSchema, ...problems(403, 404, 409) },
      },
    },
    async (request) => actions.dryRun(actorOf(request), request.params.id),
  );
  for (const verb of ["approve", "reject"] as const)
    app.post(
      `/security/actions/:id/${verb}`,
      {
        config: { permission: "actions:approve" },
        schema: {
          tags,
          summary: `${verb === "approve" ? "Approve" : "Reject"} with a note, signed with the server's Ed25519 key (never your own request)`,
          params: idParams,
          body: noteBody,
          response: { 200: actionSchema, ...problems(400, 403, 404, 409, 415, 422) },
        },
      },
      async (request) => actions[verb](actorOf(request), request.params.id, request.body?.note ?? ""),
    );
  app.post(
    "/security/actions/:id/execute",
    {
      config: { permission: "actions:execute" },
      schema: {
        tags,
        summary: "Execute an approved request exactly once (a failure is recorded with its reason and answers 422)",
        params: idParams,
        response: { 200: actionSchema, ...problems(403, 404, 409, 422) },
      },
    },
    async (request) => actions.execute(actorOf(request), request.params.id),
  );
  app.post(
    "/security/actions/:id/cancel",
    {
      config: { permission: "actions:request" },
      schema: {
        tags,
        summary: "Cancel a pending request (its requester or an admin)",
        params: idParams,
        body: noteBody,
        response: { 200: actionSchema, ...problems(400, 403, 404, 409, 415) },
      },
    },
    async (request) => actions.cancel(actorOf(request), request.params.id, request.body?.note ?? ""),
  );
};
