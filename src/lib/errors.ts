// Application errors that become RFC 9457 problem+json answers. Services throw these;
// the errors plugin turns them into responses, so the HTTP status and the stable code
// are decided where the rule lives, not in routes.

export type FieldIssue = { path: string; message: string };

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = "AppError";
  }
}

/** Declares a domain's errors once; callers throw `errors.BLOCK_NOT_FOUND(detail, extra)`. */
export const defineErrors = <T extends Record<string, { status: number; title: string }>>(spec: T) => {
  const out = {} as { [K in keyof T]: (detail: string, extra?: Record<string, unknown>) => AppError };
  for (const code of Object.keys(spec) as (keyof T & string)[]) {
    const { status, title } = spec[code]!;
    out[code] = (detail, extra) => new AppError(status, code, title, detail, extra);
  }
  return out;
};

/** Errors any domain may raise. */
export const COMMON_ERRORS = defineErrors({
  VALIDATION_FAILED: { status: 400, title: "Request validation failed" },
  MALFORMED_BODY: { status: 400, title: "Malformed request body" },
  UNAUTHENTICATED: { status: 401, title: "Authentication required" },
  FORBIDDEN: { status: 403, title: "Permission denied" },
  NOT_FOUND: { status: 404, title: "Not found" },
  METHOD_NOT_ALLOWED: { status: 405, title: "Method not allowed" },
  CONFLICT: { status: 409, title: "Conflict" },
  PAYLOAD_TOO_LARGE: { status: 413, title: "Payload too large" },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: "Unsupported media type" },
  RATE_LIMITED: { status: 429, title: "Too many requests" },
  INTERNAL_ERROR: { status: 500, title: "Internal server error" },
  SERVICE_UNAVAILABLE: { status: 503, title: "Service unavailable" },
});

export const validationError = (issues: FieldIssue[], detail?: string) =>
  COMMON_ERRORS.VALIDATION_FAILED(
    detail ?? issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; "),
    { errors: issues },
  );
