// The CrowdSec Local API under /v1 (the contract: shared/fixtures/crowdsec/localapi_swagger.yaml):
// bouncers read decisions with X-Api-Key, watchers register, log in and push alerts with a JWT.
// Errors are CrowdSec's bodies, not problem+json (see lapi-errors.ts). Registered on the main
// listener and, when crowdsec.listen is set, on the second one.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { FastifyRequest } from "fastify";
import { actorOf } from "../../app/plugins.ts";
import type { BouncersService } from "./bouncers.service.ts";
import { lookupQuery, streamQuery } from "./crowdsec.schemas.ts";
import { sendLapiError } from "./lapi-errors.ts";

const JSON_TYPE = "application/json; charset=utf-8";
const pullContext = (request: FastifyRequest) => ({ address: request.ip ?? null, userAgent: request.headers["user-agent"] });
const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

export const lapiRoutes: FastifyPluginAsyncZod<{ bouncers: BouncersService }> = async (app, { bouncers }) => {
  app.setErrorHandler(sendLapiError);
  app.machineAuth.set("bouncer", async (request) => bouncers.authenticate(headerValue(request.headers["x-api-key"])));

  const bouncerRoute = { permission: "blocklist:check", credential: "bouncer", rateClass: "enforcement" } as const;
  const tags = ["crowdsec"];

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
};
