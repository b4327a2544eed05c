// Rate limits by route class (@fastify/rate-limit): login and token endpoints per client address,
// everything else per authenticated principal (or address when anonymous), with separate, high
// ceilings for ingestion and enforcement-point traffic. With a Redis URL the counters live in
// Redis so the limits hold across nodes; without one they are per process. Failed authentications
// are counted here too, per address and per node, before any route limit applies.
import type { FastifyInstance, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import rateLimit from "@fastify/rate-limit";
import type { Redis } from "ioredis";
import type { Config } from "../config/index.ts";
import { COMMON_ERRORS } from "../lib/errors.ts";

export const RATE_CLASSES = ["login", "auth", "management", "ingest", "enforcement", "none"] as const;
export type RateClass = (typeof RATE_CLASSES)[number];

const classOf = (request: FastifyRequest): RateClass => {
  const declared = request.routeOptions.config.rateClass;
  if (declared) return declared;
  // Health probes, the API document and its UI are never limited.
  if (request.routeOptions.config.permission === "public") return "none";
  return "management";
};

/** Which limit a request counts against: per address before authentication, per principal after. */
const subjectOf = (request: FastifyRequest, cls: RateClass): string => {
  const p = request.principal;
  if (cls === "login" || cls === "auth" || !p) return `ip:${request.ip}`;
  if (p.kind === "system") return p.machine ? `${p.machine.type}:${p.machine.id}` : `system:${p.name}`;
  return p.keyId ? `key:${p.keyId}` : `user:${p.userId}`;
};

export const rateLimitPlugin = fp(async (app: FastifyInstance, opts: { settings: Config["rateLimit"]; redis?: Redis }) => {
  const { settings } = opts;
  const perMinute: Record<Exclude<RateClass, "none">, number> = {
    login: settings.loginPerMinute,
    auth: settings.authPerMinute,
    management: settings.managementPerMinute,
    ingest: settings.ingestPerMinute,
    enforcement: settings.enforcementPerMinute,
  };
  await app.register(rateLimit, {
    global: true,
    // After authentication (onRequest), so limits can be per principal; before validation and handlers.
    hook: "preValidation",
    timeWindow: 60_000,
    ...(opts.redis ? { redis: opts.redis, nameSpace: "portcullis-rl:" } : {}),
    // A Redis outage must not take the API down with it: the limiter fails open (and says so).
    skipOnError: true,
    allowList: (request) => classOf(request) === "none" || !settings.enabled,
    keyGenerator: (request) => {
      const cls = classOf(request);
      return `${cls}:${subjectOf(request, cls)}`;
    },
    max: (request) => {
      const cls = classOf(request);
      return cls === "none" ? Number.MAX_SAFE_INTEGER : perMinute[cls];
    },
    errorResponseBuilder: (request, context) =>
      COMMON_ERRORS.RATE_LIMITED(`too many ${classOf(request)} requests: at most ${context.max} per minute; retry in ${context.after}`, {
        limit: context.max,
        retry_after_seconds: Math.ceil(context.ttl / 1000),
      }),
  });
});

/**
 * Failed authentications per client address in a fixed one-minute window, on this node. A flood of
 * made-up keys or forged tokens would otherwise cost a lookup each and never meet a route's limit
 * (those run after authentication).
 */
export const authFailureCounter = (perMinute: number | undefined) => {
  const windows = new Map<string, { start: number; count: number }>();
  const MAX_ADDRESSES = 100_000;
  return {
    /** Seconds until this address may try again, or 0. */
    blockedFor(ip: string, now: number): number {
      if (perMinute === undefined) return 0;
      const w = windows.get(ip);
      if (!w || now - w.start >= 60_000 || w.count < perMinute) return 0;
      return Math.ceil((w.start + 60_000 - now) / 1000);
    },
    fail(ip: string, now: number) {
      if (perMinute === undefined) return;
      const w = windows.get(ip);
      if (!w || now - w.start >= 60_000) {
        if (windows.size >= MAX_ADDRESSES) windows.clear();
        windows.set(ip, { start: now, count: 1 });
      } else w.count++;
    },
  };
};
