// Shared OpenAPI pieces: the problem+json body every error uses.
import { z } from "zod";

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().describe("stable UPPER_SNAKE error code; switch on this, not on the message"),
    requestId: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .loose()
  .meta({ id: "Problem" });

/** Error responses for the OpenAPI document of a route. */
export const problems = (...statuses: number[]) =>
  Object.fromEntries([401, 403, ...statuses].map((s) => [s, problemSchema.describe("RFC 9457 problem+json")]));
