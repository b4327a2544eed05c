// HTTP surface of the security dashboard (PACK TT): one read-only snapshot.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { actorOf } from "../../app/plugins.ts";
import { problems } from "../../app/schemas.ts";
import type { DashboardService } from "./dashboard.service.ts";
import { dashboardSchema } from "./dashboard.schemas.ts";

export const dashboardRoutes: FastifyPluginAsyncZod<{ dashboard: DashboardService }> = async (app, { dashboard }) => {
  app.get(
    "/security/dashboard",
    {
      config: { permission: "events:read" },
      schema: {
        tags: ["dashboard"],
        summary: "Security state at a glance: mode, open incidents, blocks, honeypot activity, pending requests",
        response: { 200: dashboardSchema, ...problems() },
      },
    },
    async (request) => dashboard.snapshot(actorOf(request)),
  );
};
