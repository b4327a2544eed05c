// HTTP surface of policy-as-code rules: lifecycle, reads, validation, explained evaluation,
// simulation against recorded decisions. Thin: schema, permission, one service call.
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { actorOf } from "../../app/plugins.ts";
import { problems } from "../../app/schemas.ts";
import type { RulesService } from "./rules.service.ts";
import {
  catalogueSchema,
  createRuleBody,
  decisionSchema,
  diffQuery,
  diffSchema,
  editRuleBody,
  evaluateBody,
  listRulesQuery,
  recordedDecisionSchema,
  retireBody,
  reviewBody,
  ruleHistorySchema,
  rulePageSchema,
  ruleParams,
  ruleVersionSchema,
  schemaQuery,
  simulateBody,
  simulationSchema,
  testBody,
  testReportSchema,
  validateBody,
  validateResultSchema,
  versionParams,
} from "./rules.schemas.ts";

const tags = ["rules"];

export const rulesRoutes: FastifyPluginAsyncZod<{ rules: RulesService }> = async (app, { rules }) => {
  app.get(
    "/rules",
    {
      config: { permission: "rules:read" },
      schema: { tags, summary: "List rule versions, newest first", querystring: listRulesQuery, response: { 200: rulePageSchema, ...problems(400) } },
    },
    async (request) => rules.list(actorOf(request), request.query),
  );
  app.post(
    "/rules",
    {
      config: { permission: "rules:write" },
      schema: {
        tags,
        summary: "Create a DRAFT (version 1 of a new name, or the next version of an existing one)",
        body: createRuleBody,
        response: { 201: ruleVersionSchema, ...problems(400, 409, 415) },
      },
    },
    async (request, reply) => reply.code(201).send(await rules.createDraft(actorOf(request), request.body)),
  );
  app.get(
    "/rules/catalogue",
    {
      config: { permission: "rules:read" },
      schema: { tags, summary: "The fields rules may test, per target, with their types", response: { 200: catalogueSchema, ...problems() } },
    },
    async (request) => rules.catalogue(actorOf(request)),
  );
  app.get(
    "/rules/schema",
    {
      config: { permission: "rules:read" },
      schema: { tags, summary: "JSON Schema of a rule document for a target (for editors)", querystring: schemaQuery, response: { 200: z.record(z.string(), z.unknown()), ...problems(400) } },
    },
    async (request) => rules.schema(actorOf(request), request.query.target),
  );
  app.post(
    "/rules/validate",
    {
      config: { permission: "rules:read" },
      schema: {
        tags,
        summary: "Validate rule documents (or every stored live version) with one error per problem and its JSON pointer",
        body: validateBody,
        response: { 200: validateResultSchema, ...problems(400, 415) },
      },
    },
    async (request) => rules.validate(actorOf(request), request.body),
  );
  app.post(
    "/rules/evaluate",
    {
      config: { permission: "rules:read" },
      schema: {
        tags,
        summary: "Explain the decision for an input (active set, or with candidates); nothing is recorded",
        body: evaluateBody,
        response: { 200: decisionSchema, ...problems(400, 404, 415) },
      },
    },
    async (request) => rules.evaluate(actorOf(request), request.body),
  );
  app.post(
    "/rules/simulate",
    {
      config: { permission: "rules:read" },
      schema: {
        tags,
        summary: "Replay recorded decisions against a candidate rule set and count the flips",
        body: simulateBody,
        response: { 200: simulationSchema, ...problems(400, 404, 415) },
      },
    },
    async (request) => rules.simulate(actorOf(request), request.body),
  );
  app.post(
    "/rules/test",
    {
      config: { permission: "rules:read" },
      schema: {
        tags,
        summary: "Run rule-test fixtures against the active set (plus candidates) with this server's settings; optional branch coverage",
        body: testBody,
        response: { 200: testReportSchema, ...problems(400, 404, 415) },
      },
    },
    async (request) => rules.test(actorOf(request), request.body),
  );
  app.get(
    "/rules/decisions/:id",
    {
      config: { permission: "rules:read" },
      schema: { tags, summary: "One recorded decision with its input and rule versions", params: z.strictObject({ id: z.string().max(64) }), response: { 200: recordedDecisionSchema, ...problems(404) } },
    },
    async (request) => rules.getDecision(actorOf(request), request.params.id),
  );
  app.get(
    "/rules/:name",
    {
      config: { permission: "rules:read" },
      schema: { tags, summary: "A rule: every version and which is active", params: ruleParams, response: { 200: ruleHistorySchema, ...problems(404) } },
    },
    async (request) => rules.history(actorOf(request), request.params.name),
  );
  app.get(
    "/rules/:name/diff",
    {
      config: { permission: "rules:read" },
      schema: { tags, summary: "Differences between two versions, as JSON pointers", params: ruleParams, querystring: diffQuery, response: { 200: diffSchema, ...problems(400, 404) } },
    },
    async (request) => rules.diff(actorOf(request), request.params.name, request.query.from, request.query.to),
  );
  app.get(
    "/rules/:name/versions/:version",
    {
      config: { permission: "rules:read" },
      schema: { tags, summary: "One version", params: versionParams, response: { 200: ruleVersionSchema, ...problems(400, 404) } },
    },
    async (request) => rules.getVersion(actorOf(request), request.params.name, request.params.version),
  );
  app.patch(
    "/rules/:name/versions/:version",
    {
      config: { permission: "rules:write" },
      schema: {
        tags,
        summary: "Edit a DRAFT (fields given replace the draft's)",
        params: versionParams,
        body: editRuleBody,
        response: { 200: ruleVersionSchema, ...problems(400, 404, 409, 415) },
      },
    },
    async (request) => rules.editDraft(actorOf(request), request.params.name, request.params.version, request.body),
  );
  app.post(
    "/rules/:name/versions/:version/submit",
    {
      config: { permission: "rules:write" },
      schema: { tags, summary: "Submit a DRAFT for review (it becomes immutable)", params: versionParams, response: { 200: ruleVersionSchema, ...problems(400, 404, 409) } },
    },
    async (request) => rules.submit(actorOf(request), request.params.name, request.params.version),
  );
  app.post(
    "/rules/:name/versions/:version/review",
    {
      config: { permission: "rules:review" },
      schema: {
        tags,
        summary: "Approve or reject a submitted version, with a comment (never one you wrote or edited)",
        params: versionParams,
        body: reviewBody,
        response: { 200: ruleVersionSchema, ...problems(400, 404, 409, 415) },
      },
    },
    async (request) => rules.review(actorOf(request), request.params.name, request.params.version, request.body),
  );
  app.post(
    "/rules/:name/versions/:version/activate",
    {
      config: { permission: "rules:activate" },
      schema: {
        tags,
        summary: "Activate an approved version; the previously active version is retired in the same transaction",
        params: versionParams,
        response: { 200: ruleVersionSchema, ...problems(400, 404, 409) },
      },
    },
    async (request) => rules.activate(actorOf(request), request.params.name, request.params.version),
  );
  app.post(
    "/rules/:name/versions/:version/retire",
    {
      config: { permission: "rules:activate" },
      schema: {
        tags,
        summary: "Retire a version (an ACTIVE one stops being enforced at once; a DRAFT or REVIEW one is withdrawn)",
        params: versionParams,
        body: retireBody,
        response: { 200: ruleVersionSchema, ...problems(400, 404, 409) },
      },
    },
    async (request) => rules.retire(actorOf(request), request.params.name, request.params.version, request.body?.reason),
  );
};
