// Turns any thrown error into an RFC 9457 problem+json body. Our AppErrors carry their status and
// code; fastify and zod errors are mapped to stable codes; anything else is a masked 500.
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { AppError, COMMON_ERRORS, type FieldIssue } from "../lib/errors.ts";
import { pgErrorCode } from "../db/errors.ts";

export type Problem = {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  instance?: string;
  errors?: FieldIssue[];
  [extra: string]: unknown;
};

const FASTIFY_CODES: Record<string, (e: FastifyError) => AppError> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (e) =>
    COMMON_ERRORS.UNSUPPORTED_MEDIA_TYPE(`${e.message}; send application/json`),
  FST_ERR_CTP_BODY_TOO_LARGE: () => COMMON_ERRORS.PAYLOAD_TOO_LARGE("the request body is larger than this endpoint accepts"),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => COMMON_ERRORS.MALFORMED_BODY("Content-Length does not match the body"),
  FST_ERR_CTP_EMPTY_JSON_BODY: () =>
    COMMON_ERRORS.MALFORMED_BODY("the body is empty but Content-Type is application/json; send a JSON value or no Content-Type"),
  FST_ERR_CTP_INVALID_JSON_BODY: (e) => COMMON_ERRORS.MALFORMED_BODY(`the body is not valid JSON: ${e.message}`),
  FST_ERR_CTP_INVALID_CONTENT_TYPE: (e) => COMMON_ERRORS.UNSUPPORTED_MEDIA_TYPE(e.message),
};

const SECTION: Record<string, string> = { body: "body", querystring: "query", params: "path", headers: "header" };

const fromValidation = (error: FastifyError): AppError => {
  const where = SECTION[error.validationContext ?? "body"] ?? "body";
  const issues: FieldIssue[] = [];
  for (const v of error.validation ?? []) {
    const base = v.instancePath.replace(/^\//, "").replaceAll("/", ".");
    const keys = v.keyword === "unrecognized_keys" ? ((v.params as { keys?: string[] }).keys ?? []) : [];
    if (keys.length) for (const key of keys) issues.push({ path: base ? `${base}.${key}` : key, message: "unknown field" });
    else issues.push({ path: base, message: v.message ?? "invalid" });
  }
  const detail = issues.map((i) => `${where} ${i.path || "(root)"}: ${i.message}`).join("; ");
  return COMMON_ERRORS.VALIDATION_FAILED(detail || "invalid request", { errors: issues, in: where });
};

export const toAppError = (error: unknown): AppError => {
  if (error instanceof AppError) return error;
  const fe = error as FastifyError;
  if (hasZodFastifySchemaValidationErrors(fe)) return fromValidation(fe);
  if (fe && typeof fe === "object" && fe.code === "FST_ERR_RESPONSE_SERIALIZATION") return COMMON_ERRORS.INTERNAL_ERROR("an internal error occurred");
  if (fe && typeof fe.code === "string" && FASTIFY_CODES[fe.code]) return FASTIFY_CODES[fe.code]!(fe);
  // Safety net for input the schemas let through but the database refuses (the caller logs the cause).
  // Integrity violations (class 23) the services did not anticipate stay 500s: they signal a bug.
  if (pgErrorCode(error)?.startsWith("22")) return COMMON_ERRORS.VALIDATION_FAILED("a value in the request is outside what can be stored", { errors: [] });
  if (fe && fe.statusCode === 429) return COMMON_ERRORS.RATE_LIMITED(fe.message);
  if (fe && typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = fe.statusCode === 404 ? "NOT_FOUND" : fe.statusCode === 405 ? "METHOD_NOT_ALLOWED" : "BAD_REQUEST";
    return new AppError(fe.statusCode, code, "Bad request", fe.message);
  }
  return COMMON_ERRORS.INTERNAL_ERROR("an internal error occurred; quote the requestId when reporting it");
};

export const sendProblem = (request: FastifyRequest, reply: FastifyReply, error: AppError) => {
  const problem: Problem = {
    type: `urn:portcullis:problem:${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.message,
    code: error.code,
    requestId: String(request.id),
    instance: request.url.split("?")[0],
    ...error.extra,
  };
  if (error.status === 401) reply.header("www-authenticate", 'Bearer realm="portcullis"');
  return reply.code(error.status).type("application/problem+json; charset=utf-8").serializer(JSON.stringify).send(problem);
};
