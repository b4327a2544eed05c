// The composition root: builds every service once, wires plugins and routes, and returns a fastify
// instance that is not listening (tests use inject(); server.ts listens). Background work owned by
// the app (expiry sweep, cross-node blocklist changes) starts here and stops on close.
import Fastify, { LogController, type FastifyInstance } from "fastify";
import helmet from "@fastify/helmet";
import cors from "@fastify/cors";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import fp from "fastify-plugin";
import { randomUUID } from "node:crypto";
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { Config } from "../config/index.ts";
import type { Database, Tx } from "../db/client.ts";
import { sql } from "drizzle-orm";
import { systemClock, type Clock } from "../lib/time.ts";
import { auditRepo } from "../domains/audit/audit.repo.ts";
import { auditService } from "../domains/audit/audit.service.ts";
import { auditRoutes } from "../domains/audit/audit.routes.ts";
import { resolveSigningKey } from "../domains/audit/signing-key.ts";
import { transparencyService } from "../domains/audit/transparency.service.ts";
import { identityRepo } from "../domains/identity/identity.repo.ts";
import { identityService, type IdentityChangeFeed } from "../domains/identity/identity.service.ts";
import { accountsService } from "../domains/identity/accounts.service.ts";
import { keysService } from "../domains/identity/keys.service.ts";
import { accessTokens } from "../domains/identity/access-tokens.ts";
import { passwordHasher } from "../domains/identity/passwords.ts";
import { identityRoutes } from "../domains/identity/identity.routes.ts";
import { oidcService } from "../domains/identity/oidc.service.ts";
import { oidcRoutes } from "../domains/identity/oidc.routes.ts";
import { rateLimitPlugin } from "./rate-limit.ts";
import { Redis } from "ioredis";
import { policyRepo } from "../domains/policy/policy.repo.ts";
import { policyService } from "../domains/policy/policy.service.ts";
import { policyRoutes } from "../domains/policy/policy.routes.ts";
import { BlockIndex } from "../domains/blocklist/block-index.ts";
import { blocklistRepo } from "../domains/blocklist/blocklist.repo.ts";
import { blocklistService, type BlockChange, type BlockChangeFeed } from "../domains/blocklist/blocklist.service.ts";
import { blocklistRoutes } from "../domains/blocklist/blocklist.routes.ts";
import { rulesRepo } from "../domains/rules/rules.repo.ts";
import { rulesService } from "../domains/rules/rules.service.ts";
import { rulesRoutes } from "../domains/rules/rules.routes.ts";
import { actionsRepo } from "../domains/actions/actions.repo.ts";
import { actionsService } from "../domains/actions/actions.service.ts";
import { actionsRoutes } from "../domains/actions/actions.routes.ts";
import { actionDecisions } from "../domains/actions/decision.ts";
import { webhookOutbox } from "../domains/actions/webhooks.ts";
import { sensorsRepo } from "../domains/sensors/sensors.repo.ts";
import { sensorsService, type SensorChangeFeed } from "../domains/sensors/sensors.service.ts";
import { sensorsRoutes } from "../domains/sensors/sensors.routes.ts";
import { incidentsRepo } from "../domains/detection/incidents.repo.ts";
import { incidentsService } from "../domains/detection/incidents.service.ts";
import { incidentsRoutes } from "../domains/detection/incidents.routes.ts";
import { sentinelService } from "../domains/detection/sentinel.service.ts";
import { dashboardService } from "../domains/dashboard/dashboard.service.ts";
import { dashboardRoutes } from "../domains/dashboard/dashboard.routes.ts";
import { keyId } from "../lib/signed-note.ts";
import { credentialVaultFromConfig } from "../domains/sensors/credentials.ts";
import { sensorsRetention as sensorsRetentionJob } from "../domains/sensors/retention.ts";
import { crowdsecRepo } from "../domains/crowdsec/crowdsec.repo.ts";
import { bouncersService } from "../domains/crowdsec/bouncers.service.ts";
import { watchersService } from "../domains/crowdsec/watchers.service.ts";
import { watcherTokens } from "../domains/crowdsec/watcher-tokens.ts";
import { lapiRoutes } from "../domains/crowdsec/crowdsec.routes.ts";
import { crowdsecAdminRoutes } from "../domains/crowdsec/crowdsec-admin.routes.ts";
import { authPlugin, errorsPlugin } from "./plugins.ts";
import { sendProblem, toAppError } from "./problem.ts";
import { systemRoutes } from "./system.routes.ts";
import { loggerOptions } from "./logger.ts";

export type BuildOptions = {
  config: Config;
  db: Database;
  clock?: Clock;
  /** false silences logs (tests); otherwise pino options derived from config. */
  logger?: boolean;
  /** Where log lines go (tests capture them to scan for leaked secrets). */
  logStream?: NodeJS.WritableStream;
  /** TLS certificate and key (PEM) when serving HTTPS. */
  https?: { cert: Buffer; key: Buffer };
};

const BLOCKLIST_CHANNEL = "portcullis_blocklist";
const IDENTITY_CHANNEL = "portcullis_identity";
const SENSORS_CHANNEL = "portcullis_sensors";
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export const buildServices = (config: Config, db: Database, clock: Clock, log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void }) => {
  const auditStore = auditRepo(db.orm);
  const audit = auditService({ repo: auditStore, clock });
  const signingKey = resolveSigningKey(config);
  const transparency = transparencyService({ db, repo: auditStore, clock, key: signingKey });
  const identityStore = identityRepo(db.orm);
  const tokens = accessTokens(config, clock);
  // Revocations, disables and role changes reach other nodes' caches through NOTIFY.
  const identityFeed: IdentityChangeFeed =
    db.kind === "postgres" ? { publish: async (tx: Tx) => void (await tx.execute(sql`SELECT pg_notify(${IDENTITY_CHANNEL}, '')`)) } : { publish: async () => {} };
  const identity = identityService({ db, repo: identityStore, audit, clock, tokens, changeFeed: identityFeed, ...(log ? { log } : {}) });
  const passwords = passwordHasher({ minLength: config.auth.passwordMinLength, memoryKiB: config.auth.argon2MemoryKiB, iterations: config.auth.argon2Iterations });
  const accounts = accountsService({ db, repo: identityStore, audit, clock, config, identity, tokens, passwords });
  const oidc = oidcService({ db, repo: identityStore, audit, clock, config, accounts, ...(log ? { log } : {}) });
  const keys = keysService({ db, repo: identityStore, audit, clock, identity, defaultTtlDays: config.auth.apiKeyDefaultTtlDays });
  const policy = policyService({ db, repo: policyRepo(db.orm), audit, clock });
  // PGlite is one process: this node's own index update after commit is the whole fan-out.
  const changeFeed: BlockChangeFeed =
    db.kind === "postgres"
      ? { publish: async (tx: Tx, change: BlockChange) => void (await tx.execute(sql`SELECT pg_notify(${BLOCKLIST_CHANNEL}, ${JSON.stringify(change)})`)) }
      : { publish: async () => {} };
  const blockIndex = new BlockIndex((rejected) =>
    log?.warn({ rejected: rejected.slice(0, 20), count: rejected.length }, "blocks with values the matcher cannot use are not enforced"),
  );
  const blocklist = blocklistService({
    db,
    repo: blocklistRepo(db.orm),
    audit,
    clock,
    index: blockIndex,
    settings: config.blocklist,
    changeFeed,
  });
  // The dummy hash that unknown-user logins verify: made now, so the first one is not the slow one.
  passwords.warm().catch(() => {});
  const rules = rulesService({ db, repo: rulesRepo(db.orm), audit, clock, settings: { ...config.rules, protectedNetworks: config.blocklist.protectedNetworks }, ...(log ? { log } : {}) });
  // Sensor keys are cached a few seconds per node; a deactivation or rotation clears every node's cache through NOTIFY.
  const sensorFeed: SensorChangeFeed =
    db.kind === "postgres" ? { publish: async (tx: Tx) => void (await tx.execute(sql`SELECT pg_notify(${SENSORS_CHANNEL}, '')`)) } : { publish: async () => {} };
  // Captured sensor credentials: sealed under sensors.credentialKeys (a generated key in the local profile).
  const credentialVault = credentialVaultFromConfig(config);
  const sensors = sensorsService({
    db,
    repo: sensorsRepo(db.orm),
    audit,
    clock,
    vault: credentialVault,
    settings: config.sensors,
    changeFeed: sensorFeed,
    ...(log ? { log } : {}),
  });
  const actionStore = actionsRepo(db.orm);
  const actionWebhooks = webhookOutbox({ repo: actionStore, settings: config.actions, ...(log ? { log } : {}) });
  const actions = actionsService({
    db,
    repo: actionStore,
    audit,
    clock,
    services: { blocklist, policy, keys, accounts, sensors },
    policy,
    // Requests about an address get the sensors' telemetry of it (decision.ts feeds it to the engine).
    decisions: actionDecisions({ rules, telemetry: sensors }),
    // Verdicts are signed with the audit key, so one public key (GET /audit/public-key) checks both.
    signing: { privateKey: signingKey.privateKey, keyIdHex: keyId(signingKey.origin, signingKey.publicKeyRaw).toString("hex") },
    webhooks: actionWebhooks,
    settings: config.actions,
    ...(log ? { log } : {}),
  });
  // Detection: incidents, and the sentinel that raises action requests as the system principal.
  const incidents = incidentsService({ db, repo: incidentsRepo(db.orm), audit, clock });
  const sentinel = sentinelService({ incidents, actions, policy, blocklist, clock, settings: config.detection, ...(log ? { log } : {}) });
  // The dashboard reads aggregates only: rollups, the enforcement index, partial indexes.
  const dashboard = dashboardService({ policy, incidents, blocklist, actions, sensors, clock });
  // Telemetry retention: signed summaries in the audit log, then the events go (docs/decisions/0007).
  const sensorsRetention = sensorsRetentionJob({
    db,
    audit,
    clock,
    signing: { privateKey: signingKey.privateKey, keyIdHex: keyId(signingKey.origin, signingKey.publicKeyRaw).toString("hex") },
    settings: { retentionDays: config.sensors.retentionDays },
  });
  // CrowdSec Local API: bouncers read the blocklist's matcher and the decision projection.
  const crowdsecStore = crowdsecRepo(db.orm);
  // Deleted bouncers and watchers reach other nodes' credential caches through the identity channel.
  const crowdsecBouncers = bouncersService({ db, repo: crowdsecStore, audit, clock, index: blockIndex, changeFeed: identityFeed, ...(log ? { log } : {}) });
  // Watchers' alerts become events (sensors) and block proposals through the sentinel (incident,
  // one open block request per source, the policy engine decides).
  const crowdsec = {
    bouncers: crowdsecBouncers,
    watchers: watchersService({
      db,
      repo: crowdsecStore,
      audit,
      clock,
      passwords,
      tokens: watcherTokens(config, clock),
      bouncers: crowdsecBouncers,
      changeFeed: identityFeed,
      sensors,
      sentinel,
      actions,
      ...(log ? { log } : {}),
    }),
  };
  return { audit, transparency, identity, accounts, oidc, keys, passwords, policy, blocklist, blockIndex, rules, actions, actionWebhooks, credentialVault, sensors, sensorsRetention, incidents, sentinel, dashboard, crowdsec };
};
export type Services = ReturnType<typeof buildServices>;

export type RouteEntry = { method: string | string[]; url: string; config?: { permission?: string } };

declare module "fastify" {
  interface FastifyInstance {
    services: Services;
    /** Every registered route with its declared permission; the default-deny test walks it. */
    routeTable: RouteEntry[];
  }
}

/** A fastify instance with the server's options (the main listener and the CrowdSec listener share them). */
const newFastify = (config: Config, options: { logger: boolean; logStream?: NodeJS.WritableStream | undefined; https?: { cert: Buffer; key: Buffer } | undefined }) => {
  const app = Fastify({
    ...(options.https ? { https: options.https } : {}),
    logger: options.logger ? loggerOptions(config, options.logStream) : false,
    logController: new LogController({ disableRequestLogging: !config.log.requests }),
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // Errors raised before routing (a malformed URL) are problem+json too.
    frameworkErrors: (error, request, reply) => {
      void sendProblem(request, reply, toAppError(error));
    },
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers["x-request-id"];
      return typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
  });
  // JSON only: a text/plain body is refused with 415 instead of reaching validation as a string.
  app.removeContentTypeParser("text/plain");
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  return app;
};

export const buildApp = async (options: BuildOptions): Promise<FastifyInstance> => {
  const { config, db } = options;
  const clock = options.clock ?? systemClock;
  const app = newFastify(config, { ...options, logger: options.logger !== false });

  const services = buildServices(config, db, clock, app.log);
  app.decorate("services", services);
  // Keep the route option objects themselves: plugins may still set their config after this hook runs.
  const routeTable: RouteEntry[] = [];
  app.decorate("routeTable", routeTable);
  app.addHook("onRoute", (route) => {
    routeTable.push(route as RouteEntry);
  });

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  await app.register(errorsPlugin);
  // The headers that matter for a JSON API (and the docs page): no MIME sniffing, no framing, no
  // referrer leaks. Helmet's document-isolation headers add bytes to every enforcement check for no
  // benefit to API clients; CSP is set by the docs UI on its own pages.
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: false,
    hsts: options.https ? { maxAge: 31_536_000 } : false,
    crossOriginEmbedderPolicy: false,
    crossOriginOpenerPolicy: false,
    crossOriginResourcePolicy: false,
    originAgentCluster: false,
    dnsPrefetchControl: false,
    permittedCrossDomainPolicies: false,
    xDownloadOptions: false,
    xXssProtection: false,
  });
  if (config.http.corsOrigins.length) await app.register(cors, { origin: [...config.http.corsOrigins] });
  await app.register(authPlugin, {
    identity: services.identity,
    ...(config.rateLimit.enabled ? { authFailuresPerMinute: config.rateLimit.authFailuresPerMinute } : {}),
  });
  // Shared counters across nodes when Redis is configured; commands fail fast rather than queue
  // while it is unreachable (the limiter then fails open).
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000 })
    : undefined;
  if (redis) {
    // ioredis retries in the background and reports every failed attempt; one line a minute is enough.
    let lastWarning = 0;
    redis.on("error", (err: Error) => {
      if (Date.now() - lastWarning < 60_000) return;
      lastWarning = Date.now();
      app.log.warn({ err: { message: err.message } }, "redis (rate limits) unavailable; limits fail open until it is back");
    });
    await redis.connect().catch((err: unknown) => app.log.warn({ err }, "redis (rate limits) unreachable at startup; limits fail open until it is back"));
    app.addHook("onClose", async () => void (await redis.quit().catch(() => redis.disconnect())));
  }
  await app.register(rateLimitPlugin, { settings: config.rateLimit, ...(redis ? { redis } : {}) });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Portcullis API",
        version: "0.1.0",
        description: "Security operations control plane. Authenticate with `Authorization: Bearer <API key>`. Errors are RFC 9457 problem+json with a stable `code`.",
      },
      components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "Portcullis API key (pc_...)" } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  // The docs UI and its assets are public; marking them here keeps the default-deny rule for everything else.
  await app.register(
    fp(async (docs) => {
      docs.addHook("onRoute", (route) => {
        if (route.url.startsWith("/docs")) route.config = { ...(route.config ?? {}), permission: "public" };
      });
      await docs.register(swaggerUi, { routePrefix: "/docs" });
    }),
  );
  app.get("/openapi.json", { config: { permission: "public" }, schema: { hide: true } }, async () => app.swagger());

  await app.register(systemRoutes, { db });
  await app.register(identityRoutes, { accounts: services.accounts, keys: services.keys });
  await app.register(oidcRoutes, { oidc: services.oidc });
  await app.register(policyRoutes, { policy: services.policy });
  await app.register(blocklistRoutes, { blocklist: services.blocklist });
  await app.register(auditRoutes, { audit: services.audit, transparency: services.transparency });
  await app.register(rulesRoutes, { rules: services.rules });
  await app.register(actionsRoutes, { actions: services.actions });
  await app.register(sensorsRoutes, { sensors: services.sensors, settings: config.sensors });
  await app.register(incidentsRoutes, { incidents: services.incidents });
  await app.register(dashboardRoutes, { dashboard: services.dashboard });
  await app.register(lapiRoutes, services.crowdsec);
  await app.register(crowdsecAdminRoutes, services.crowdsec);

  // Background work: follow other nodes' changes, load the enforcement index, record expiries.
  // LISTEN starts before the first load: a change committed while loading arrives as a notification
  // and is replayed on top of the snapshot (see BlockIndex), instead of being missed until restart.
  let stopListening: (() => Promise<void>) | undefined;
  let stopIdentity: (() => Promise<void>) | undefined;
  let stopSensors: (() => Promise<void>) | undefined;
  if (db.kind === "postgres") {
    const clear = () => {
      services.identity.invalidateCache();
      services.crowdsec.bouncers.invalidateCache();
      services.crowdsec.watchers.invalidateCache();
    };
    stopIdentity = await db.listen(IDENTITY_CHANNEL, clear, clear);
    const clearSensors = () => services.sensors.invalidateCache();
    stopSensors = await db.listen(SENSORS_CHANNEL, clearSensors, clearSensors);
    stopListening = await db.listen(
      BLOCKLIST_CHANNEL,
      (payload) => {
        let change: BlockChange;
        try {
          change = JSON.parse(payload) as BlockChange;
        } catch {
          return;
        }
        services.blocklist.applyChange(change).catch((err: unknown) => app.log.error({ err }, "applying a blocklist change failed"));
      },
      () => {
        services.blocklist.reloadIndex().catch((err: unknown) => app.log.error({ err }, "reloading the blocklist failed"));
      },
    );
  }
  await services.blocklist.reloadIndex();
  // The decision mirror for bouncers (after the index: lookups resolve index hits through it).
  await services.crowdsec.bouncers.start();
  // The compiled rule set; on PostgreSQL it follows other nodes' activations (LISTEN before load).
  await services.rules.start();
  // Detection follows ingestion from now on and replays the current window in the background.
  services.sentinel.start(services.sensors);
  let sweeping = false;
  const sweepTimer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    services.blocklist
      .sweepExpired()
      .then((n) => n && app.log.info({ expired: n }, "recorded expired blocks"))
      .catch((err: unknown) => app.log.error({ err }, "expiry sweep failed"))
      .finally(() => {
        sweeping = false;
      });
  }, config.blocklist.sweepIntervalSeconds * 1000);
  sweepTimer.unref();
  // Pending action requests past their time to live are recorded as expired (also checked at every transition).
  let sweepingActions = false;
  const actionSweepTimer = setInterval(() => {
    if (sweepingActions) return;
    sweepingActions = true;
    services.actions
      .sweepExpired()
      .then((n) => n && app.log.info({ expired: n }, "recorded expired action requests"))
      .catch((err: unknown) => app.log.error({ err }, "action expiry sweep failed"))
      .finally(() => {
        sweepingActions = false;
      });
  }, config.actions.sweepIntervalSeconds * 1000);
  actionSweepTimer.unref();
  // Webhook deliveries left pending by a previous run (or another node) are picked up.
  services.actionWebhooks.start();
  // Checkpoints: signed every few seconds when the log has grown.
  let checkpointing = false;
  const checkpointTimer = setInterval(() => {
    if (checkpointing) return;
    checkpointing = true;
    services.transparency
      .issueCheckpoint()
      .catch((err: unknown) => app.log.error({ err }, "issuing an audit checkpoint failed"))
      .finally(() => {
        checkpointing = false;
      });
  }, config.audit.checkpointIntervalSeconds * 1000);
  checkpointTimer.unref();
  // Telemetry retention (removes events past sensors.retentionDays, signing a summary first).
  let retaining: Promise<unknown> | undefined;
  const retentionTimer = setInterval(() => {
    if (retaining) return;
    retaining = services.sensorsRetention
      .run()
      .then((r) => r.events + r.rollups > 0 && app.log.info({ events: r.events, batches: r.batches, rollups: r.rollups, cutoff: r.cutoff }, "telemetry retention removed old events"))
      .catch((err: unknown) => app.log.error({ err }, "telemetry retention failed"))
      .finally(() => {
        retaining = undefined;
      });
  }, config.sensors.retentionIntervalSeconds * 1000);
  retentionTimer.unref();
  app.addHook("onClose", async () => {
    clearInterval(retentionTimer);
    // A batch in flight finishes (or rolls back) before the database closes under it.
    await retaining;
    clearInterval(sweepTimer);
    clearInterval(checkpointTimer);
    clearInterval(actionSweepTimer);
    await services.actionWebhooks.stop();
    await services.sentinel.stop();
    services.blockIndex.close();
    await stopListening?.();
    await stopIdentity?.();
    await stopSensors?.();
    await services.rules.stop();
    await services.crowdsec.bouncers.stop();
  });

  await app.ready();
  return app;
};

/**
 * The optional second listener (crowdsec.listen): a separate fastify instance serving only the
 * CrowdSec Local API (/v1) over the main app's services, with the same authentication, limits and
 * error handling. server.ts starts it after the main listener and closes it first.
 */
export const buildLapiApp = async (main: FastifyInstance, config: Config, options: { https?: { cert: Buffer; key: Buffer }; logStream?: NodeJS.WritableStream } = {}): Promise<FastifyInstance> => {
  const lapi = newFastify(config, { ...options, logger: true });
  lapi.decorate("services", main.services);
  const routeTable: RouteEntry[] = [];
  lapi.decorate("routeTable", routeTable);
  lapi.addHook("onRoute", (route) => {
    routeTable.push(route as RouteEntry);
  });
  await lapi.register(errorsPlugin);
  await lapi.register(authPlugin, {
    identity: main.services.identity,
    ...(config.rateLimit.enabled ? { authFailuresPerMinute: config.rateLimit.authFailuresPerMinute } : {}),
  });
  await lapi.register(rateLimitPlugin, { settings: config.rateLimit });
  await lapi.register(lapiRoutes, main.services.crowdsec);
  await lapi.ready();
  return lapi;
};

/** "127.0.0.1:8080" or "[::1]:8080" -> host and port. */
export const parseListen = (listen: string): { host: string; port: number } => {
  const at = listen.lastIndexOf(":");
  return { host: listen.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(listen.slice(at + 1)) };
};
