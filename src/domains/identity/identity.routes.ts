// HTTP surface of identity: login, refresh, logout, password change, sessions, whoami (/auth/...),
// API keys (/auth/keys) and user administration (/users).
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { FastifyRequest } from "fastify";
import { actorOf } from "../../app/plugins.ts";
import { problems } from "../../app/schemas.ts";
import { COMMON_ERRORS } from "../../lib/errors.ts";
import { MAX_PASSWORD_LENGTH } from "./passwords.ts";
import { ROLES, PERMISSIONS } from "./permissions.ts";
import type { AccountsService } from "./accounts.service.ts";
import type { KeysService } from "./keys.service.ts";

const client = (request: FastifyRequest) => ({ ip: request.ip ?? null, userAgent: typeof request.headers["user-agent"] === "string" ? request.headers["user-agent"] : null });

const password = z.string().min(1).max(MAX_PASSWORD_LENGTH);
const userRef = z.string().min(1).max(64).describe("user id or username");
const idParam = z.object({ id: z.uuid() });

const tokensSchema = z
  .object({
    access_token: z.string(),
    token_type: z.literal("Bearer"),
    expires_in: z.number().int(),
    refresh_token: z.string(),
    refresh_expires_in: z.number().int(),
    session_id: z.string(),
    password_change_required: z.boolean(),
  })
  .meta({ id: "Tokens" });

const sessionSchema = z
  .object({
    id: z.string(),
    user_id: z.string(),
    auth_method: z.string(),
    created_at: z.string(),
    last_seen_at: z.string(),
    expires_at: z.string(),
    ip: z.string().nullable(),
    user_agent: z.string().nullable(),
    active: z.boolean(),
    revoked_at: z.string().nullable(),
    revoked_reason: z.string().nullable(),
    current: z.boolean(),
  })
  .meta({ id: "Session" });

const userSchema = z
  .object({
    id: z.string(),
    username: z.string(),
    role: z.string(),
    kind: z.string(),
    disabled: z.boolean(),
    auth: z.string(),
    must_change_password: z.boolean(),
    locked_until: z.string().nullable(),
    failed_logins: z.number().int(),
    last_login_at: z.string().nullable(),
    created_at: z.string(),
    created_by: z.string(),
  })
  .meta({ id: "User" });

const keySchema = z
  .object({
    id: z.string(),
    prefix: z.string(),
    name: z.string(),
    user_id: z.string(),
    owner: z.string().nullable(),
    role: z.string(),
    permissions: z.array(z.string()).nullable(),
    effective_permissions: z.array(z.string()),
    created_at: z.string(),
    created_by: z.string(),
    expires_at: z.string().nullable(),
    last_used_at: z.string().nullable(),
    last_used_ip: z.string().nullable(),
    status: z.enum(["active", "revoked", "expired"]),
    revoked_at: z.string().nullable(),
    revoked_by: z.string().nullable(),
  })
  .meta({ id: "ApiKey" });

const revokedSchema = z.object({ revoked: z.number().int() });

export const identityRoutes: FastifyPluginAsyncZod<{ accounts: AccountsService; keys: KeysService }> = async (app, { accounts, keys }) => {
  // ------------------------------------------------------------------ sessions
  app.post(
    "/auth/login",
    {
      config: { permission: "public", rateClass: "login" },
      schema: {
        tags: ["identity"],
        summary: "Log in with a username and password: a short-lived access token and a rotating refresh token",
        security: [],
        body: z.strictObject({ username: z.string().min(1).max(128), password }),
        response: { 200: tokensSchema, ...problems(400, 429) },
      },
    },
    async (request) => accounts.login(request.body, client(request)),
  );
  app.post(
    "/auth/refresh",
    {
      config: { permission: "public", rateClass: "auth" },
      schema: {
        tags: ["identity"],
        summary: "Exchange a refresh token for a new pair (the old one is spent; presenting it again revokes the session)",
        security: [],
        body: z.strictObject({ refresh_token: z.string().min(1).max(256) }),
        response: { 200: tokensSchema, ...problems(400, 429) },
      },
    },
    async (request) => accounts.refresh(request.body.refresh_token, client(request)),
  );
  app.post(
    "/auth/logout",
    {
      config: { permission: "public", optionalAuth: true, passwordChangeExempt: true, rateClass: "auth" },
      schema: {
        tags: ["identity"],
        summary: "End a session: the caller's (access token) or the one a refresh token belongs to",
        body: z.strictObject({ refresh_token: z.string().min(1).max(256).optional() }).nullish(),
        response: { 200: revokedSchema, ...problems(400) },
      },
    },
    async (request) => accounts.logout(request.principal ? actorOf(request) : undefined, request.body?.refresh_token),
  );
  app.get(
    "/auth/whoami",
    {
      config: { permission: "authenticated", passwordChangeExempt: true },
      schema: {
        tags: ["identity"],
        summary: "The calling principal and its effective permissions",
        response: {
          200: z.object({
            kind: z.string(),
            id: z.string(),
            username: z.string(),
            role: z.string(),
            user_kind: z.string(),
            via: z.enum(["api_key", "session"]),
            key_prefix: z.string().nullable(),
            session_id: z.string().nullable(),
            must_change_password: z.boolean(),
            permissions: z.array(z.string()),
          }),
          ...problems(),
        },
      },
    },
    async (request) => {
      const p = actorOf(request).principal;
      if (p.kind === "system") throw COMMON_ERRORS.FORBIDDEN("system principals have no whoami");
      return {
        kind: p.kind,
        id: p.userId,
        username: p.username,
        role: p.role,
        user_kind: p.kindOfUser,
        via: p.via,
        key_prefix: p.keyPrefix ?? null,
        session_id: p.sessionId ?? null,
        must_change_password: p.mustChangePassword ?? false,
        permissions: [...p.permissions].sort(),
      };
    },
  );
  app.post(
    "/auth/password",
    {
      config: { permission: "authenticated", passwordChangeExempt: true, rateClass: "auth", sessionOnly: true },
      schema: {
        tags: ["identity"],
        summary: "Change your own password (other sessions are revoked)",
        body: z.strictObject({ current_password: password.optional(), new_password: password }),
        response: { 200: z.object({ changed: z.boolean(), other_sessions_revoked: z.number().int() }), ...problems(400) },
      },
    },
    async (request) => accounts.changePassword(actorOf(request), request.body),
  );
  app.get(
    "/auth/sessions",
    {
      config: { permission: "authenticated", passwordChangeExempt: true, sessionOnly: true },
      schema: {
        tags: ["identity"],
        summary: "Your sessions (open ones, or all with include_ended)",
        querystring: z.strictObject({ include_ended: z.stringbool().default(false) }),
        response: { 200: z.object({ items: z.array(sessionSchema) }), ...problems(400) },
      },
    },
    async (request) => ({ items: await accounts.listSessions(actorOf(request), undefined, request.query.include_ended) }),
  );
  app.delete(
    "/auth/sessions/:id",
    {
      config: { permission: "authenticated", passwordChangeExempt: true, sessionOnly: true },
      schema: { tags: ["identity"], summary: "Revoke one of your sessions", params: idParam, response: { 200: revokedSchema, ...problems(404) } },
    },
    async (request) => accounts.revokeSession(actorOf(request), request.params.id),
  );
  app.post(
    "/auth/sessions/revoke-all",
    {
      config: { permission: "authenticated", passwordChangeExempt: true, sessionOnly: true },
      schema: {
        tags: ["identity"],
        summary: "Revoke all your sessions (optionally keeping the current one)",
        body: z.strictObject({ except_current: z.boolean().default(false) }).nullish(),
        response: { 200: revokedSchema, ...problems(400) },
      },
    },
    async (request) => accounts.revokeAllSessions(actorOf(request), { exceptCurrent: request.body?.except_current ?? false }),
  );

  // ------------------------------------------------------------------ API keys
  app.post(
    "/auth/keys",
    {
      config: { permission: "keys:own" },
      schema: {
        tags: ["identity"],
        summary: "Create an API key (the key is in this answer only). Never more than you hold.",
        body: z.strictObject({
          name: z.string().min(1).max(100),
          role: z.enum(ROLES).optional(),
          permissions: z.array(z.enum(PERMISSIONS)).min(1).max(PERMISSIONS.length).optional(),
          expires_at: z.iso.datetime({ offset: true }).nullable().optional().describe("null: never expires"),
          expires_in_days: z.number().int().min(1).max(3650).optional(),
          user: userRef.optional().describe("owner other than yourself (needs keys:manage), e.g. a service account"),
        }),
        response: { 201: keySchema.extend({ key: z.string() }), ...problems(400, 404, 409) },
      },
    },
    async (request, reply) => reply.code(201).send(await keys.create(actorOf(request), request.body)),
  );
  app.get(
    "/auth/keys",
    {
      config: { permission: "keys:own" },
      schema: {
        tags: ["identity"],
        summary: "Your API keys (or a user's, or everyone's, with keys:manage)",
        querystring: z.strictObject({ user: userRef.optional(), all: z.stringbool().default(false) }),
        response: { 200: z.object({ items: z.array(keySchema) }), ...problems(400, 404) },
      },
    },
    async (request) => ({ items: await keys.list(actorOf(request), { ...(request.query.user ? { user: request.query.user } : {}), all: request.query.all }) }),
  );
  app.get(
    "/auth/keys/:id",
    { config: { permission: "keys:own" }, schema: { tags: ["identity"], summary: "One API key", params: idParam, response: { 200: keySchema, ...problems(404) } } },
    async (request) => keys.show(actorOf(request), request.params.id),
  );
  app.post(
    "/auth/keys/:id/revoke",
    { config: { permission: "keys:own" }, schema: { tags: ["identity"], summary: "Revoke an API key", params: idParam, response: { 200: keySchema, ...problems(404) } } },
    async (request) => keys.revoke(actorOf(request), request.params.id),
  );

  // ------------------------------------------------------------------ users (admin)
  const userParam = z.object({ user: userRef });
  app.get(
    "/users",
    { config: { permission: "users:read" }, schema: { tags: ["users"], summary: "All users and service accounts", response: { 200: z.object({ items: z.array(userSchema) }), ...problems() } } },
    async (request) => ({ items: await accounts.listUsers(actorOf(request)) }),
  );
  app.post(
    "/users",
    {
      config: { permission: "users:write" },
      schema: {
        tags: ["users"],
        summary: "Create a user (with a password, or a temporary one returned once) or a service account",
        body: z.strictObject({ username: z.string().min(1).max(64), role: z.enum(ROLES), kind: z.enum(["human", "service"]).default("human"), password: password.optional() }),
        response: { 201: z.object({ user: userSchema, temporary_password: z.string().optional() }), ...problems(400, 409) },
      },
    },
    async (request, reply) => reply.code(201).send(await accounts.createUser(actorOf(request), request.body)),
  );
  app.get(
    "/users/:user",
    { config: { permission: "users:read" }, schema: { tags: ["users"], summary: "One user", params: userParam, response: { 200: userSchema, ...problems(404) } } },
    async (request) => accounts.showUser(actorOf(request), request.params.user),
  );
  app.post(
    "/users/:user/disable",
    { config: { permission: "users:write" }, schema: { tags: ["users"], summary: "Disable a user (sessions revoked, keys stop working)", params: userParam, response: { 200: userSchema, ...problems(404, 409) } } },
    async (request) => accounts.setDisabled(actorOf(request), request.params.user, true),
  );
  app.post(
    "/users/:user/enable",
    { config: { permission: "users:write" }, schema: { tags: ["users"], summary: "Enable a user", params: userParam, response: { 200: userSchema, ...problems(404) } } },
    async (request) => accounts.setDisabled(actorOf(request), request.params.user, false),
  );
  app.post(
    "/users/:user/role",
    {
      config: { permission: "users:write" },
      schema: { tags: ["users"], summary: "Change a user's role", params: userParam, body: z.strictObject({ role: z.enum(ROLES) }), response: { 200: userSchema, ...problems(400, 404, 409) } },
    },
    async (request) => accounts.setRole(actorOf(request), request.params.user, request.body.role),
  );
  app.post(
    "/users/:user/reset-password",
    {
      config: { permission: "users:write" },
      schema: {
        tags: ["users"],
        summary: "Reset a password (given, or generated and returned once); it must be changed at next login",
        params: userParam,
        body: z.strictObject({ password: password.optional() }).nullish(),
        response: { 200: z.object({ user: userSchema, temporary_password: z.string().optional() }), ...problems(400, 404) },
      },
    },
    async (request) => accounts.resetPassword(actorOf(request), request.params.user, request.body?.password),
  );
  app.post(
    "/users/:user/unlock",
    { config: { permission: "users:write" }, schema: { tags: ["users"], summary: "Lift a login lockout", params: userParam, response: { 200: userSchema, ...problems(404) } } },
    async (request) => accounts.unlock(actorOf(request), request.params.user),
  );
  app.get(
    "/users/:user/sessions",
    {
      config: { permission: "users:read" },
      schema: {
        tags: ["users"],
        summary: "A user's sessions",
        params: userParam,
        querystring: z.strictObject({ include_ended: z.stringbool().default(false) }),
        response: { 200: z.object({ items: z.array(sessionSchema) }), ...problems(404) },
      },
    },
    async (request) => ({ items: await accounts.listSessions(actorOf(request), request.params.user, request.query.include_ended) }),
  );
  app.post(
    "/users/:user/sessions/revoke",
    { config: { permission: "users:write" }, schema: { tags: ["users"], summary: "Revoke all of a user's sessions", params: userParam, response: { 200: revokedSchema, ...problems(404) } } },
    async (request) => accounts.revokeAllSessions(actorOf(request), { userRef: request.params.user }),
  );
};
