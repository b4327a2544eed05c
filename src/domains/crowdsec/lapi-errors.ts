// Errors in CrowdSec's own shapes. Bouncers and agents parse these bodies ({"message": ...} for
// API-key routes, {"code": n, "message": ...} for the JWT routes), so /v1 answers them instead of
// problem+json. `status` is what the authentication-failure limiter reads (401 = a failed
// credential), `httpStatus` what the client sees: CrowdSec answers a bad API key with 403.
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { toAppError } from "../../app/problem.ts";
import { AppError } from "../../lib/errors.ts";

export class LapiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly body: Record<string, unknown>,
    /** 401 marks a failed authentication for the per-address limiter. */
    readonly status: number = httpStatus,
  ) {
    super(String(body.message));
    this.name = "LapiError";
  }
}

export const LAPI_ERRORS = {
  /** Missing, unknown or deleted bouncer key: exactly CrowdSec's answer. */
  accessForbidden: () => new LapiError(403, { message: "access forbidden" }, 401),
  /** A watcher's token is missing, malformed, expired or revoked (gin-jwt's shape). */
  tokenRefused: (message: string) => new LapiError(401, { code: 401, message }, 401),
  /** Login refused: unknown machine, wrong password or not validated yet. */
  loginRefused: (message: string) => new LapiError(403, { code: 403, message }, 401),
  badRequest: (message: string) => new LapiError(400, { message }),
  forbidden: (message: string) => new LapiError(403, { message }),
  notFound: (message: string) => new LapiError(404, { message }),
};

/**
 * A failed query's message and params carry what was being written (an agent's alert, an attacker's
 * credentials in its events): log the driver's error, never the parameters.
 */
const loggable = (error: unknown): unknown => {
  if (!(error instanceof Error) || !("params" in error)) return error;
  const cause = error.cause as { message?: string; code?: string } | undefined;
  return { type: error.name, message: cause?.message ?? "query failed", code: cause?.code, stack: error.stack?.split("\n").filter((l) => /^\s+at /.test(l)).slice(0, 8).join("\n") };
};

/** The /v1 error handler: CrowdSec-shaped bodies for everything, problem details folded into message. */
export const sendLapiError = async (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
  if (error instanceof LapiError) return reply.code(error.httpStatus).type("application/json; charset=utf-8").send(JSON.stringify(error.body));
  if (hasZodFastifySchemaValidationErrors(error as FastifyError)) {
    const issues = (error as FastifyError).validation ?? [];
    const message = issues.map((v) => `${v.instancePath.replace(/^\//, "").replaceAll("/", ".") || "body"}: ${v.message ?? "invalid"}`).join("; ");
    return reply.code(400).type("application/json; charset=utf-8").send(JSON.stringify({ message: message || "invalid request" }));
  }
  const appError = error instanceof AppError ? error : toAppError(error);
  if (appError.status >= 500) request.log.error({ err: loggable(error) }, "request failed");
  if (appError.status === 429 && appError.extra.retry_after_seconds !== undefined) void reply.header("retry-after", String(appError.extra.retry_after_seconds));
  const body: Record<string, unknown> = { message: appError.message };
  if (appError.code === "FORBIDDEN") body.message = "access forbidden";
  return reply.code(appError.status).type("application/json; charset=utf-8").send(JSON.stringify(body));
};
