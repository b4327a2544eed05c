// Liveness and readiness: what load balancers and orchestrators ask first.
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Database } from "../db/client.ts";
import { pendingMigrations } from "../db/migrate.ts";
import { problems } from "./schemas.ts";
import { COMMON_ERRORS } from "../lib/errors.ts";

export const systemRoutes: FastifyPluginAsyncZod<{ db: Database }> = async (app, { db }) => {
  app.get(
    "/healthz",
    { config: { permission: "public" }, schema: { tags: ["system"], summary: "The process is alive", response: { 200: z.object({ status: z.literal("ok") }) } } },
    async () => ({ status: "ok" as const }),
  );
  app.get(
    "/readyz",
    {
      config: { permission: "public" },
      schema: {
        tags: ["system"],
        summary: "The database is reachable and migrations are current",
        response: { 200: z.object({ status: z.literal("ready"), database: z.string() }), 503: problems()[401]! },
      },
    },
    async (request) => {
      try {
        await db.query("SELECT 1");
      } catch (error) {
        request.log.warn({ err: error }, "readiness: database unreachable");
        throw COMMON_ERRORS.SERVICE_UNAVAILABLE("the database is not reachable");
      }
      const pending = await pendingMigrations(db);
      if (pending.length) throw COMMON_ERRORS.SERVICE_UNAVAILABLE(`migrations not applied: ${pending.join(", ")}`, { pending_migrations: pending });
      return { status: "ready" as const, database: db.kind };
    },
  );
};
