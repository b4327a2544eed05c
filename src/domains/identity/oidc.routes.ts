// HTTP surface of OIDC single sign-on: /auth/oidc/login sends the browser to the provider, and
// /auth/oidc/callback completes the login and answers with the session's tokens. Until the web console
// exists the callback answers JSON; the console will switch it to a cookie or URL-fragment hand-off.
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { FastifyRequest } from "fastify";
import { problems } from "../../app/schemas.ts";
import { validationError } from "../../lib/errors.ts";
import { isSafeReturnTo, type OidcService } from "./oidc.service.ts";

const clientOf = (request: FastifyRequest) => ({ ip: request.ip ?? null, userAgent: typeof request.headers["user-agent"] === "string" ? request.headers["user-agent"] : null });

const param = z.string().max(4096).optional();

const callbackTokens = z.object({
  access_token: z.string(),
  token_type: z.literal("Bearer"),
  expires_in: z.number().int(),
  refresh_token: z.string(),
  refresh_expires_in: z.number().int(),
  session_id: z.string(),
  password_change_required: z.boolean(),
  return_to: z.string().nullable().describe("the relative path given to /auth/oidc/login, if any"),
});

// The callback's query carries the authorization code and state: keep them out of the request log line.
const redactedRequest = (req: FastifyRequest) => ({
  method: req.method,
  url: req.url.includes("?") ? `${req.url.slice(0, req.url.indexOf("?"))}?[redacted]` : req.url,
  host: req.host,
  remoteAddress: req.ip,
});

export const oidcRoutes: FastifyPluginAsyncZod<{ oidc: OidcService }> = async (app, { oidc }) => {
  app.get(
    "/auth/oidc/login",
    {
      config: { permission: "public", rateClass: "auth" },
      // A HEAD (link prefetch) would start a login for nobody.
      exposeHeadRoute: false,
      schema: {
        tags: ["identity"],
        summary: "Start single sign-on: redirects (302) to the identity provider with authorization code + PKCE",
        security: [],
        querystring: z.strictObject({ return_to: z.string().max(512).optional().describe("relative path to return to after login (echoed by the callback)") }),
        response: problems(400, 404, 429, 502, 503),
      },
    },
    async (request, reply) => {
      const returnTo = request.query.return_to;
      if (returnTo !== undefined && !isSafeReturnTo(returnTo))
        throw validationError([{ path: "return_to", message: "must be a relative path on this site, starting with a single /" }]);
      const location = await oidc.startLogin(returnTo);
      reply.header("cache-control", "no-store");
      return reply.redirect(location, 302);
    },
  );
  app.get(
    "/auth/oidc/callback",
    {
      config: { permission: "public", rateClass: "auth" },
      // A HEAD (link prefetch, scanner) must not spend the one-use state and code.
      exposeHeadRoute: false,
      logSerializers: { req: redactedRequest },
      schema: {
        tags: ["identity"],
        summary: "Where the identity provider returns the browser: exchanges the code, maps claims to a role, provisions the user and opens a session",
        description:
          "Answers with the session's tokens as JSON for now; the web console will switch this to a cookie or URL-fragment hand-off. Each login state is good for one callback within 10 minutes.",
        security: [],
        // Loose: providers add their own parameters (iss, session_state, scope...).
        querystring: z.object({ code: param, state: param, error: param, error_description: param, error_uri: param, iss: param }),
        response: { 200: callbackTokens, ...problems(400, 404, 429, 502, 503) },
      },
    },
    async (request, reply) => {
      reply.header("cache-control", "no-store");
      const at = request.url.indexOf("?");
      return oidc.finishLogin(request.query, at >= 0 ? request.url.slice(at + 1) : "", clientOf(request));
    },
  );
};
