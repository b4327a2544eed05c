// Admin API of the CrowdSec surface: bouncers (create shows the key once, list, delete) and
// watchers (list, validate, delete). Problem+json like the rest of the admin API.
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { actorOf } from "../../app/plugins.ts";
import { problems } from "../../app/schemas.ts";
import type { BouncersService } from "./bouncers.service.ts";
import type { WatchersService } from "./watchers.service.ts";
import { bouncerSchema, createBouncerBody, createdBouncerSchema, idOrNameParams, watcherSchema } from "./crowdsec.schemas.ts";

export const crowdsecAdminRoutes: FastifyPluginAsyncZod<{ bouncers: BouncersService; watchers: WatchersService }> = async (app, { bouncers, watchers }) => {
  const tags = ["crowdsec"];
  app.get(
    "/crowdsec/bouncers",
    {
      config: { permission: "enforcement:manage" },
      schema: { tags, summary: "Bouncers with their last pull, address and agent version", response: { 200: z.array(bouncerSchema), ...problems() } },
    },
    async (request) => bouncers.listBouncers(actorOf(request)),
  );
  app.post(
    "/crowdsec/bouncers",
    {
      config: { permission: "enforcement:manage" },
      schema: { tags, summary: "Add a bouncer; its key is in this answer only", body: createBouncerBody, response: { 201: createdBouncerSchema, ...problems(400, 409) } },
    },
    async (request, reply) => reply.code(201).send(await bouncers.createBouncer(actorOf(request), request.body)),
  );
  app.delete(
    "/crowdsec/bouncers/:id",
    {
      config: { permission: "enforcement:manage" },
      schema: { tags, summary: "Delete a bouncer (by id or name); its key stops working", params: idOrNameParams, response: { 200: bouncerSchema, ...problems(404) } },
    },
    async (request) => bouncers.deleteBouncer(actorOf(request), request.params.id),
  );
  app.get(
    "/crowdsec/watchers",
    { config: { permission: "enforcement:manage" }, schema: { tags, summary: "Watchers (agents), validated or pending", response: { 200: z.array(watcherSchema), ...problems() } } },
    async (request) => watchers.listWatchers(actorOf(request)),
  );
  app.post(
    "/crowdsec/watchers/:id/validate",
    {
      config: { permission: "enforcement:manage" },
      schema: { tags, summary: "Validate a registered watcher (by id or machine id) so it can log in", params: idOrNameParams, response: { 200: watcherSchema, ...problems(404, 409) } },
    },
    async (request) => watchers.validateWatcher(actorOf(request), request.params.id),
  );
  app.delete(
    "/crowdsec/watchers/:id",
    {
      config: { permission: "enforcement:manage" },
      schema: { tags, summary: "Delete a watcher (by id or machine id); its tokens stop working", params: idOrNameParams, response: { 200: watcherSchema, ...problems(404) } },
    },
    async (request) => watchers.deleteWatcher(actorOf(request), request.params.id),
  );
};
