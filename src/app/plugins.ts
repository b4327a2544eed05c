// Cross-cutting plugins: request ids, problem+json errors, authentication and default-deny
// permission checks. Wrapped with fastify-plugin so they apply to every route.
import type { FastifyInstance, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { COMMON_ERRORS, validationError } from "../lib/errors.ts";
import type { IdentityService } from "../domains/identity/identity.service.ts";
import type { RoutePermission } from "../domains/identity/permissions.ts";
import type { Actor, Principal } from "../domains/identity/principal.ts";
import { sendProblem, toAppError } from "./problem.ts";
import { pgErrorCode } from "../db/errors.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** What the route requires. Routes without one are denied to everybody (default deny). */
    permission?: RoutePermission;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * Path of the first string PostgreSQL text or canonical JSON cannot hold unchanged (a NUL, or a lone
 * UTF-16 surrogate that would silently become U+FFFD), or undefined. Keys are checked as well.
 */
const findUnstorable = (value: unknown, path: string, depth = 0): string | undefined => {
  const bad = (s: string) => s.includes("\u0000") || !s.isWellFormed();
  if (typeof value === "string") return bad(value) ? path : undefined;
  if (depth > 32 || value === null || typeof value !== "object") return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key;
    if (bad(key)) return at;
    const found = findUnstorable(inner, at, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
};

export const errorsPlugin = fp(async (app: FastifyInstance) => {
  app.addHook("preValidation", async (request) => {
    for (const [where, value] of [["query", request.query], ["path", request.params], ["body", request.body]] as const) {
      const path = findUnstorable(value, "");
      if (path !== undefined)
        throw validationError(
          [{ path, message: "contains a NUL character or an unpaired UTF-16 surrogate" }],
          `${where} ${path || "(root)"}: contains a NUL character or an unpaired UTF-16 surrogate`,
        );
    }
  });
  app.setErrorHandler(async (error, request, reply) => {
    const appError = toAppError(error);
    if (appError.status >= 500) request.log.error({ err: error }, "request failed");
    else if (pgErrorCode(error)) request.log.warn({ err: error }, "database refused a request's input");
    return sendProblem(request, reply, appError);
  });
  app.setNotFoundHandler(async (request, reply) =>
    sendProblem(request, reply, COMMON_ERRORS.NOT_FOUND(`no route ${request.method} ${request.url.split("?")[0]}`)),
  );
});

const BEARER = /^Bearer\s+(\S+)\s*$/i;

export const authPlugin = fp(async (app: FastifyInstance, opts: { identity: IdentityService }) => {
  app.decorateRequest("principal", null);
  app.addHook("onRequest", async (request) => {
    // No matched route: the not-found handler answers 404.
    if (request.is404) return;
    const permission = request.routeOptions.config.permission;
    if (permission === "public") return;
    const header = request.headers.authorization;
    if (!header) throw COMMON_ERRORS.UNAUTHENTICATED("send an API key as Authorization: Bearer <key>");
    const match = BEARER.exec(header);
    if (!match || match[1]!.length > 512) throw COMMON_ERRORS.UNAUTHENTICATED("the Authorization header must be Bearer <key>");
    const principal = await opts.identity.authenticateApiKey(match[1]!);
    request.principal = principal;
    if (permission === undefined)
      throw COMMON_ERRORS.FORBIDDEN("this route declares no permission, so it is denied to everyone (default deny)");
    if (permission !== "authenticated" && !principal.permissions.has(permission))
      throw COMMON_ERRORS.FORBIDDEN(`this needs the permission ${permission}, which role ${principal.role} does not have`, {
        required_permission: permission,
      });
  });
});

/** The Actor a service call runs as: the authenticated principal and the request id for the audit log. */
export const actorOf = (request: FastifyRequest): Actor => {
  if (!request.principal) throw COMMON_ERRORS.UNAUTHENTICATED("authentication required");
  return { principal: request.principal, requestId: String(request.id) };
};
