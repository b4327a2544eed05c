// HTTP surface of incidents: list (filters, cursor paging), one, and resolve. Thin: schema,
// permission, one service call.
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { actorOf } from "../../app/plugins.ts";
import { problems } from "../../app/schemas.ts";
import type { IncidentsService } from "./incidents.service.ts";
import { incidentPageSchema, incidentSchema, listIncidentsQuery, resolveIncidentBody } from "./incidents.schemas.ts";

const idParams = z.strictObject({ id: z.string().max(64) });
const tags = ["detection"];

export const incidentsRoutes: FastifyPluginAsyncZod<{ incidents: IncidentsService }> = async (app, { incidents }) => {
  app.get(
    "/security/incidents",
    {
      config: { permission: "events:read" },
      schema: {
        tags,
        summary: "Incidents the sentinel opened (newest first); filters status, severity, source_ip, threat",
        querystring: listIncidentsQuery,
        response: { 200: incidentPageSchema, ...problems(400) },
      },
    },
    async (request) => incidents.listIncidents(actorOf(request), request.query),
  );
  app.get(
    "/security/incidents/:id",
    {
      config: { permission: "events:read" },
      schema: { tags, summary: "One incident with its evidence", params: idParams, response: { 200: incidentSchema, ...problems(404) } },
    },
    async (request) => incidents.getIncident(actorOf(request), request.params.id),
  );
  app.post(
    "/security/incidents/:id/resolve",
    {
      config: { permission: "events:triage" },
      schema: {
        tags,
        summary: "Resolve an open incident (audited); the sentinel opens a new one if the source trips again",
        params: idParams,
        body: resolveIncidentBody,
        response: { 200: incidentSchema, ...problems(400, 404, 409, 415) },
      },
    },
    async (request) => incidents.resolveIncident(actorOf(request), request.params.id, request.body?.note ?? ""),
  );
};
