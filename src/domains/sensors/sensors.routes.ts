// HTTP surface of the sensors (PACK TS): the registry and event triage for people, and the
// ingestion endpoints for sensors (X-HONEYPOT-KEY; Splunk HEC for stock Cowrie; OpenCanary's
// webhook). Ingestion routes live in an encapsulated plugin with their own raw-body parser, so the
// rest of the API keeps its JSON-only parsing; the HEC routes answer in HEC's format.
import { z } from "zod";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { actorOf } from "../../app/plugins.ts";
import { toAppError } from "../../app/problem.ts";
import { problems } from "../../app/schemas.ts";
import { COMMON_ERRORS } from "../../lib/errors.ts";
import type { SensorSettings, SensorsService } from "./sensors.service.ts";
import {
  batchResultSchema,
  createInstanceSchema,
  deactivateInstanceSchema,
  eventItemSchema,
  eventPageSchema,
  ingestResultSchema,
  instancePageSchema,
  instanceSchema,
  instanceWithKeySchema,
  listEventsQuery,
  listInstancesQuery,
  nativeEventSchema,
  rotateKeySchema,
} from "./sensors.schemas.ts";

const idParams = z.strictObject({ id: z.string().max(64) });
const MAX_KEY_LENGTH = 256;
const SPLUNK = /^Splunk\s+(\S+)\s*$/i;

/** The "sensor" machine credential: X-HONEYPOT-KEY, or Authorization: Splunk <key> (HEC clients). */
export const sensorAuthenticator = (sensors: SensorsService) => async (request: FastifyRequest) => {
  const header = request.headers["x-honeypot-key"];
  if (Array.isArray(header)) throw COMMON_ERRORS.UNAUTHENTICATED("send exactly one X-HONEYPOT-KEY header");
  let key = typeof header === "string" ? header.trim() : undefined;
  if (!key) {
    const match = request.headers.authorization ? SPLUNK.exec(request.headers.authorization) : null;
    if (match) key = match[1];
  }
  if (!key) throw COMMON_ERRORS.UNAUTHENTICATED("send the sensor's key in the X-HONEYPOT-KEY header (HEC clients: Authorization: Splunk <key>)");
  if (key.length > MAX_KEY_LENGTH) throw COMMON_ERRORS.UNAUTHENTICATED("the sensor key is far too long to be one");
  return sensors.authenticateKey(key);
};

const rawBody = (request: FastifyRequest): string => (typeof request.body === "string" ? request.body : "");
const contentTypeOf = (request: FastifyRequest): string => String(request.headers["content-type"] ?? "");

// Splunk HEC's answers (code, text) for our refusals; Cowrie logs the text of anything but 200.
const hecError = (request: FastifyRequest, error: unknown): { status: number; body: Record<string, unknown> } => {
  const e = toAppError(error as FastifyError);
  switch (e.code) {
    case "UNAUTHENTICATED":
      return request.headers.authorization && !request.headers["x-honeypot-key"]
        ? { status: 401, body: { text: "Invalid authorization", code: 3 } }
        : { status: 401, body: { text: "Token is required", code: 2 } };
    case "SENSOR_DEACTIVATED":
      return { status: 403, body: { text: "Token disabled", code: 1 } };
    case "SENSOR_KEY_INVALID":
    case "SENSOR_KEY_EXPIRED":
    case "SENSOR_KEY_REVOKED":
    case "FORBIDDEN":
      return { status: 403, body: { text: "Invalid token", code: 4 } };
    case "RATE_LIMITED":
      return { status: 429, body: { text: "Server is busy", code: 9 } };
    case "PAYLOAD_TOO_LARGE":
      return { status: 413, body: { text: "Content too large", code: 6 } };
    default:
      return e.status >= 500 ? { status: 500, body: { text: "Internal server error", code: 8 } } : { status: 400, body: { text: "Invalid data format", code: 6 } };
  }
};

const ingestionRoutes = async (app: FastifyInstance, { sensors, settings }: { sensors: SensorsService; settings: SensorSettings }) => {
  // Bodies reach the handlers as text: the adapters need each item's exact bytes (the event key of a
  // retried batch must not change), and senders use JSON, NDJSON, text/plain, forms or no type at all.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));
  const config = { permission: "events:ingest", rateClass: "ingest", credential: "sensor" } as const;
  const withZod = app.withTypeProvider<import("fastify-type-provider-zod").ZodTypeProvider>();

  withZod.post(
    "/security/honeypot/events",
    {
      config,
      bodyLimit: settings.eventMaxBytes,
      schema: {
        tags: ["sensors"],
        summary: "Post one event (sensor key in X-HONEYPOT-KEY)",
        description: `Body: ${JSON.stringify(z.toJSONSchema(nativeEventSchema))}`,
        response: { 201: ingestResultSchema, ...problems(400, 413) },
      },
    },
    async (request, reply) => reply.code(201).send(await sensors.ingestOne(actorOf(request), rawBody(request))),
  );
  withZod.post(
    "/security/honeypot/events/batch",
    {
      config,
      bodyLimit: settings.batchMaxBytes,
      // Up to batchMaxEvents results: plain JSON.stringify instead of a validating encode pass.
      serializerCompiler: () => (data) => JSON.stringify(data),
      schema: {
        tags: ["sensors"],
        summary: "Post a batch of events: a JSON array or NDJSON; answers per item",
        response: { 200: batchResultSchema, ...problems(400, 413) },
      },
    },
    async (request) => sensors.ingestBatch(actorOf(request), rawBody(request), contentTypeOf(request)),
  );
  withZod.post(
    "/security/honeypot/ingest/opencanary",
    {
      config,
      // A form-encoded line is up to three times its size.
      bodyLimit: settings.eventMaxBytes * 3,
      schema: {
        tags: ["sensors"],
        summary: "OpenCanary's WebhookHandler: {\"message\": \"<log line>\"} (JSON or form), key in X-HONEYPOT-KEY",
        response: { 200: ingestResultSchema, ...problems(400, 413) },
      },
    },
    async (request) => sensors.ingestOpenCanary(actorOf(request), rawBody(request), contentTypeOf(request)),
  );

  await app.register(async (hec) => {
    hec.setErrorHandler(async (error, request, reply) => {
      const { status, body } = hecError(request, error);
      if (status >= 500) request.log.error({ err: error }, "HEC request failed");
      return reply.code(status).type("application/json").send(body);
    });
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const result = await sensors.ingestHec(actorOf(request), rawBody(request));
      return reply.code(result.status).type("application/json").send(result.body);
    };
    for (const url of ["/services/collector/event", "/services/collector"])
      hec.post(
        url,
        {
          config,
          bodyLimit: settings.batchMaxBytes,
          serializerCompiler: () => (data) => JSON.stringify(data),
          schema: {
            tags: ["sensors"],
            summary: "Splunk HTTP Event Collector for Cowrie's output_splunk (Authorization: Splunk <sensor key>)",
            response: { 200: z.object({ text: z.string(), code: z.number().int() }) },
          },
        },
        handler,
      );
  });
};

export const sensorsRoutes: FastifyPluginAsyncZod<{ sensors: SensorsService; settings: SensorSettings }> = async (app, { sensors, settings }) => {
  app.machineAuth.set("sensor", sensorAuthenticator(sensors));
  app.post(
    "/security/honeypot/instances",
    {
      config: { permission: "sensors:manage" },
      schema: {
        tags: ["sensors"],
        summary: "Register a sensor; the answer carries its key once",
        body: createInstanceSchema,
        response: { 201: instanceWithKeySchema, ...problems(400, 409, 415) },
      },
    },
    async (request, reply) => reply.code(201).send(await sensors.createInstance(actorOf(request), request.body)),
  );
  app.get(
    "/security/honeypot/instances",
    {
      config: { permission: "events:read" },
      schema: { tags: ["sensors"], summary: "List sensors", querystring: listInstancesQuery, response: { 200: instancePageSchema, ...problems(400) } },
    },
    async (request) => sensors.listInstances(actorOf(request), request.query),
  );
  app.get(
    "/security/honeypot/instances/:id",
    {
      config: { permission: "events:read" },
      schema: { tags: ["sensors"], summary: "One sensor", params: idParams, response: { 200: instanceSchema, ...problems(404) } },
    },
    async (request) => sensors.showInstance(actorOf(request), request.params.id),
  );
  app.post(
    "/security/honeypot/instances/:id/deactivate",
    {
      config: { permission: "sensors:manage" },
      schema: {
        tags: ["sensors"],
        summary: "Deactivate a sensor (its keys are refused at once)",
        params: idParams,
        body: deactivateInstanceSchema,
        response: { 200: instanceSchema, ...problems(404, 409) },
      },
    },
    async (request) => sensors.deactivate(actorOf(request), request.params.id, request.body?.reason ?? ""),
  );
  app.post(
    "/security/honeypot/instances/:id/rotate-key",
    {
      config: { permission: "sensors:manage" },
      schema: {
        tags: ["sensors"],
        summary: "Issue a new key; the previous ones keep working for the grace period",
        params: idParams,
        body: rotateKeySchema,
        response: { 200: instanceWithKeySchema, ...problems(404, 409) },
      },
    },
    async (request) => sensors.rotateKey(actorOf(request), request.params.id, request.body?.grace_seconds),
  );
  app.get(
    "/security/honeypot/events",
    {
      config: { permission: "events:read" },
      schema: {
        tags: ["sensors"],
        summary: "List events, newest first (credentials masked unless the caller has telemetry:secrets)",
        querystring: listEventsQuery,
        response: { 200: eventPageSchema, ...problems(400) },
      },
    },
    async (request) => sensors.listEvents(actorOf(request), request.query),
  );
  app.post(
    "/security/honeypot/events/:id/processed",
    {
      config: { permission: "events:triage" },
      schema: {
        tags: ["sensors"],
        summary: "Mark an event processed (idempotent; the event itself is never edited)",
        params: idParams,
        response: { 200: eventItemSchema, ...problems(404) },
      },
    },
    async (request) => sensors.markProcessed(actorOf(request), request.params.id),
  );
  await app.register(ingestionRoutes, { sensors, settings });
};
