// The CrowdSec Local API under /v1 (the contract: shared/fixtures/crowdsec/localapi_swagger.yaml):
// bouncers read decisions with X-Api-Key, watchers register, log in and push alerts with a JWT.
// Errors are CrowdSec's bodies, not problem+json (see lapi-errors.ts). Registered on the main
// listener and, when crowdsec.listen is set, on the second one.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { FastifyRequest } from "fastify";
import { actorOf } from "../../app/plugins.ts";
import { z } from "zod";
import type { BouncersService } from "./bouncers.service.ts";
import type { WatchersService } from "./watchers.service.ts";
import { alertsQuery, deleteDecisionsQuery, lookupQuery, streamQuery } from "./crowdsec.schemas.ts";
import { sendLapiError } from "./lapi-errors.ts";

const JSON_TYPE = "application/json; charset=utf-8";
const pullContext = (request: FastifyRequest) => ({ address: request.ip ?? null, userAgent: request.headers["user-agent"] });
const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
const requestContext = (request: FastifyRequest) => ({ address: request.ip ?? null, userAgent: request.headers["user-agent"], requestId: String(request.id) });

export const lapiRoutes: FastifyPluginAsyncZod<{ bouncers: BouncersService; watchers: WatchersService }> = async (app, { bouncers, watchers }) => {
  app.setErrorHandler(sendLapiError);
  app.machineAuth.set("bouncer", async (request) => bouncers.authenticate(headerValue(request.headers["x-api-key"])));
  app.machineAuth.set("watcher", async (request) => watchers.authenticate(request.headers.authorization));

  const bouncerRoute = { permission: "blocklist:check", credential: "bouncer", rateClass: "enforcement" } as const;
  const tags = ["crowdsec"];

  // Declared before its GET so it replaces the automatic HEAD, which would run the GET handler and
  // record a pull: a HEAD only checks the key.
  app.head(
    "/v1/decisions",
    { config: bouncerRoute, schema: { tags, summary: "CrowdSec bouncers: checks the key; records no pull", querystring: lookupQuery } },
    async (_request, reply) => reply.type(JSON_TYPE).send(""),
  );
  app.get(
    "/v1/decisions",
    {
      config: bouncerRoute,
      schema: { tags, summary: "CrowdSec bouncers: decisions matching an IP, a range or a scope/value (null when none)", querystring: lookupQuery },
    },
    async (request, reply) => reply.type(JSON_TYPE).send(await bouncers.lookup(actorOf(request), request.query, pullContext(request))),
  );
  // Declared before its GET so it replaces the automatic HEAD: a HEAD must not move the cursor.
  app.head(
    "/v1/decisions/stream",
    { config: bouncerRoute, schema: { tags, summary: "CrowdSec bouncers: checks the key; does not move the stream cursor", querystring: streamQuery } },
    async (_request, reply) => reply.type(JSON_TYPE).send(""),
  );
  app.get(
    "/v1/decisions/stream",
    {
      config: bouncerRoute,
      schema: { tags, summary: "CrowdSec bouncers: new and deleted decisions since this bouncer's last pull (all of them with startup=true)", querystring: streamQuery },
    },
    async (request, reply) => reply.type(JSON_TYPE).send(await bouncers.stream(actorOf(request), request.query, pullContext(request))),
  );

  app.post(
    "/v1/usage-metrics",
    { config: bouncerRoute, schema: { tags, summary: "CrowdSec bouncers: usage metrics (stored as sent)" } },
    async (request, reply) => {
      await bouncers.recordUsageMetrics(actorOf(request), request.body);
      return reply.code(201).type(JSON_TYPE).send('{"message":"OK"}');
    },
  );

  // ---- watchers (agents) ----
  const watcherRoute = { permission: "events:ingest", credential: "watcher" } as const;
  app.post(
    "/v1/watchers",
    { config: { permission: "public", rateClass: "login" }, schema: { tags, summary: "CrowdSec watchers: register (pending until an admin validates it)" } },
    async (request, reply) => {
      await watchers.register(request.body, requestContext(request));
      return reply.code(201).type(JSON_TYPE).send("");
    },
  );
  app.post(
    "/v1/watchers/login",
    { config: { permission: "public", rateClass: "auth" }, schema: { tags, summary: "CrowdSec watchers: log in for a token valid one hour ({code, expire, token})" } },
    async (request, reply) => reply.type(JSON_TYPE).send(JSON.stringify(await watchers.login(request.body, requestContext(request)))),
  );
  app.get("/v1/heartbeat", { config: watcherRoute, schema: { tags, summary: "CrowdSec watchers: heartbeat" } }, async (request, reply) => {
    await watchers.heartbeat(actorOf(request));
    return reply.type(JSON_TYPE).send("");
  });
  app.post(
    "/v1/alerts",
    { config: { ...watcherRoute, rateClass: "ingest" }, schema: { tags, summary: "CrowdSec watchers: push alerts (events, and a block proposal for the source)" } },
    async (request, reply) => reply.code(201).type(JSON_TYPE).send(JSON.stringify(await watchers.pushAlerts(actorOf(request), request.body, requestContext(request)))),
  );
  app.get(
    "/v1/alerts",
    { config: watcherRoute, schema: { tags, summary: "CrowdSec watchers: search alerts", querystring: alertsQuery } },
    async (request, reply) => reply.type(JSON_TYPE).send(JSON.stringify(await watchers.listAlerts(actorOf(request), request.query))),
  );
  app.delete(
    "/v1/decisions",
    { config: watcherRoute, schema: { tags, summary: "CrowdSec watchers: ask to delete decisions (raises unblock requests)", querystring: deleteDecisionsQuery } },
    async (request, reply) => reply.type(JSON_TYPE).send(JSON.stringify(await watchers.deleteDecisions(actorOf(request), request.query, requestContext(request)))),
  );
  app.delete(
    "/v1/decisions/:decision_id",
    {
      config: watcherRoute,
      schema: { tags, summary: "CrowdSec watchers: ask to delete one decision (raises an unblock request)", params: z.object({ decision_id: z.string().max(20) }) },
    },
    async (request, reply) => {
      const id = Number(request.params.decision_id);
      if (!/^\d{1,15}$/.test(request.params.decision_id)) return reply.code(400).type(JSON_TYPE).send('{"message":"decision_id must be valid integer"}');
      return reply.type(JSON_TYPE).send(JSON.stringify(await watchers.deleteDecisions(actorOf(request), { id }, requestContext(request))));
    },
  );
};
