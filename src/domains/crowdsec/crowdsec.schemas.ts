// API shapes of the CrowdSec surface: the /v1 query strings (strings as CrowdSec reads them; unknown
// parameters are ignored as CrowdSec's server does) and the admin API's bouncer and watcher views.
import { z } from "zod";

const param = z.string().max(1000).optional();

export const lookupQuery = z.object({
  scope: param,
  value: param,
  type: param,
  ip: param,
  range: param,
  contains: param,
  origins: param,
  scenarios_containing: param,
  scenarios_not_containing: param,
});

export const streamQuery = z.object({
  startup: param,
  scopes: param,
  origins: param,
  scenarios_containing: param,
  scenarios_not_containing: param,
  dedup: param,
});

export const alertsQuery = z.object({
  scope: param,
  value: param,
  scenario: param,
  ip: param,
  range: param,
  since: param,
  until: param,
  simulated: param,
  has_active_decision: param,
  decision_type: param,
  limit: param,
  origin: param,
});

export const deleteDecisionsQuery = z.object({ scope: param, value: param, type: param, ip: param, range: param, scenario: param });

export const bouncerNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/, "1-100 letters, digits and . _ @ - (starting with a letter or digit)");

export const bouncerSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    key_prefix: z.string().describe("the key's first characters, to tell keys apart; the key itself is shown once"),
    created_at: z.string(),
    created_by: z.string(),
    agent_name: z.string().nullable().describe("from the User-Agent of its last pull"),
    agent_version: z.string().nullable(),
    last_pull_at: z.string().nullable(),
    last_address: z.string().nullable(),
  })
  .meta({ id: "CrowdsecBouncer" });

export const createdBouncerSchema = bouncerSchema
  .extend({ key: z.string().describe("the X-Api-Key value; shown only in this answer") })
  .meta({ id: "CrowdsecBouncerCreated" });

export const createBouncerBody = z.strictObject({ name: bouncerNameSchema });

export const watcherSchema = z
  .object({
    id: z.string(),
    machine_id: z.string(),
    validated: z.boolean(),
    validated_at: z.string().nullable(),
    validated_by: z.string().nullable(),
    created_at: z.string(),
    registered_from: z.string().nullable(),
    agent_name: z.string().nullable(),
    agent_version: z.string().nullable(),
    scenarios: z.array(z.string()),
    last_login_at: z.string().nullable(),
    last_heartbeat_at: z.string().nullable(),
    last_push_at: z.string().nullable(),
  })
  .meta({ id: "CrowdsecWatcher" });

export const idOrNameParams = z.strictObject({ id: z.string().min(1).max(200) });
