// Cross-cutting plugins: request ids, problem+json errors, authentication and default-deny
// permission checks. Wrapped with fastify-plugin so they apply to every route.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { COMMON_ERRORS, validationError } from "../lib/errors.ts";
import type { IdentityService } from "../domains/identity/identity.service.ts";
import type { RoutePermission } from "../domains/identity/permissions.ts";
import type { Actor, Principal } from "../domains/identity/principal.ts";
import { sendProblem, toAppError } from "./problem.ts";
import { pgErrorCode } from "../db/errors.ts";
import { authFailureCounter, type RateClass } from "./rate-limit.ts";
import { ACCOUNT_ERRORS } from "../domains/identity/accounts.service.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** What the route requires. Routes without one are denied to everybody (default deny). */
    permission?: RoutePermission;
    /** A public route that uses the caller's identity when one is presented (logout). */
    optionalAuth?: boolean;
    /** Callable while the user must change an admin-reset password (whoami, password, sessions, logout). */
    passwordChangeExempt?: boolean;
    /**
     * Only with a login session's access token, never an API key: a key (often narrower than its
     * owner's role, and held by a machine) must not set its owner's password or manage their sessions.
     */
    sessionOnly?: boolean;
    /** Which rate limit applies (see rate-limit.ts); default "management", health and docs none. */
    rateClass?: RateClass;
    /**
     * A machine credential scheme registered in `app.machineAuth` (a sensor's X-HONEYPOT-KEY, a
     * bouncer's X-Api-Key, a watcher's token) instead of a Bearer API key or access token. The
     * scheme returns the machine's principal; `permission` is then checked against it as usual.
     */
    credential?: string;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyInstance {
    /** Machine credential schemes by name; a domain registers its own before its routes. */
    machineAuth: Map<string, MachineAuthenticator>;
  }
}

/**
 * Reads a machine's credential from the request and returns its principal, or throws (a 401/403
 * AppError, or a protocol-specific error the scheme's routes know how to render). A throw with
 * status 401 counts as a failed authentication for the per-address limiter.
 */
export type MachineAuthenticator = (request: FastifyRequest, reply: FastifyReply) => Promise<Principal>;

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
// Our keys are 46 characters and access tokens about 400; anything much longer is not a credential.
const MAX_CREDENTIAL_LENGTH = 2048;

export const authPlugin = fp(async (app: FastifyInstance, opts: { identity: IdentityService; authFailuresPerMinute?: number }) => {
  app.decorateRequest("principal", null);
  app.decorate("machineAuth", new Map<string, MachineAuthenticator>());
  const failures = authFailureCounter(opts.authFailuresPerMinute);
  const authenticate = async (request: FastifyRequest, reply: FastifyReply, token: string) => {
    const ip = request.ip ?? "unknown";
    const wait = failures.blockedFor(ip, Date.now());
    if (wait > 0) {
      void reply.header("retry-after", String(wait));
      throw COMMON_ERRORS.RATE_LIMITED(`too many failed authentications from this address; retry in ${wait} s`, { retry_after_seconds: wait });
    }
    try {
      return await opts.identity.authenticate(token, request.ip ?? null);
    } catch (error) {
      if ((error as { status?: number }).status === 401) failures.fail(ip, Date.now());
      throw error;
    }
  };
  app.addHook("onRequest", async (request, reply) => {
    // No matched route: the not-found handler answers 404.
    if (request.is404) return;
    const { permission, optionalAuth, passwordChangeExempt, sessionOnly, credential } = request.routeOptions.config;
    if (credential !== undefined) {
      const scheme = app.machineAuth.get(credential);
      if (!scheme || permission === undefined || permission === "public" || permission === "authenticated")
        throw COMMON_ERRORS.FORBIDDEN("this route declares no usable machine permission, so it is denied to everyone (default deny)");
      const ip = request.ip ?? "unknown";
      const wait = failures.blockedFor(ip, Date.now());
      if (wait > 0) {
        void reply.header("retry-after", String(wait));
        throw COMMON_ERRORS.RATE_LIMITED(`too many failed authentications from this address; retry in ${wait} s`, { retry_after_seconds: wait });
      }
      let principal: Principal;
      try {
        principal = await scheme(request, reply);
      } catch (error) {
        if ((error as { status?: number }).status === 401) failures.fail(ip, Date.now());
        throw error;
      }
      request.principal = principal;
      if (!principal.permissions.has(permission))
        throw COMMON_ERRORS.FORBIDDEN(`this needs the permission ${permission}, which this ${credential} credential does not have`, {
          required_permission: permission,
        });
      return;
    }
    const header = request.headers.authorization;
    if (permission === "public" && !(optionalAuth && header)) return;
    if (!header) throw COMMON_ERRORS.UNAUTHENTICATED("send an API key or access token as Authorization: Bearer <credential>");
    const match = BEARER.exec(header);
    if (!match || match[1]!.length > MAX_CREDENTIAL_LENGTH)
      throw COMMON_ERRORS.UNAUTHENTICATED("the Authorization header must be Bearer <credential> (an API key or an access token)");
    if (permission === "public") {
      // Optional identity (logout): an expired or revoked access token must not stop the caller
      // from ending its session with the refresh token instead.
      request.principal = await authenticate(request, reply, match[1]!).catch(() => null);
      return;
    }
    const principal = await authenticate(request, reply, match[1]!);
    request.principal = principal;
    if (permission === undefined)
      throw COMMON_ERRORS.FORBIDDEN("this route declares no permission, so it is denied to everyone (default deny)");
    if (sessionOnly && principal.via !== "session")
      throw COMMON_ERRORS.FORBIDDEN("this needs a login session (POST /auth/login); API keys cannot change their owner's password or manage their sessions");
    if (principal.mustChangePassword && !passwordChangeExempt)
      throw ACCOUNT_ERRORS.PASSWORD_CHANGE_REQUIRED("an administrator reset your password: change it with POST /auth/password first");
    if (permission !== "authenticated" && !principal.permissions.has(permission))
      throw COMMON_ERRORS.FORBIDDEN(`this needs the permission ${permission}, which ${principal.keyPrefix ? `API key ${principal.keyPrefix}` : `role ${principal.role}`} does not have`, {
        required_permission: permission,
      });
  });
});

/** The Actor a service call runs as: the authenticated principal and the request id for the audit log. */
export const actorOf = (request: FastifyRequest): Actor => {
  if (!request.principal) throw COMMON_ERRORS.UNAUTHENTICATED("authentication required");
  return { principal: request.principal, requestId: String(request.id) };
};
