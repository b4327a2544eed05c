// Recognising PostgreSQL errors by SQLSTATE, whichever driver or wrapper raised them.
export const pgErrorCode = (error: unknown): string | undefined => {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
};

export const isUniqueViolation = (error: unknown) => pgErrorCode(error) === "23505";
/** Raised by portcullis_reject_mutation() on append-only tables. */
export const isAppendOnlyViolation = (error: unknown) => pgErrorCode(error) === "PC001";
