// Validation of rule documents (on save, /rules/validate, `rules validate`) and of decision inputs.
// Two passes: a JSON Schema per target (ajv; discriminator on `op`, additionalProperties false, field
// names enumerated from the catalogue) for shape, then a typed pass (value types per field, CIDRs, IP
// classes per field type, regex safety). Every problem is reported once with its JSON pointer.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { normalizeCidr, normalizeIp } from "../../lib/ip.ts";
import { CATALOGUE, closest, fieldNames, isTarget, TARGETS, WEEKDAYS, type FieldSpec, type Target } from "./catalogue.ts";
import { COMPARATORS, DECISIONS, IP_CLASSES, OPS, RULE_MODES, type Expr, type RuleDocument } from "./expression.ts";
import { compileSafeRegex } from "./safe-regex.ts";

export type RuleIssue = { pointer: string; path: string; message: string; keyword: string };

export const MAX_DEPTH = 24;
export const MAX_NODES = 500;
const NAME_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$";
const RESERVED_NAMES = ["catalogue", "schema", "validate", "evaluate", "simulate", "test", "decisions"];

const pathOf = (pointer: string) =>
  pointer
    .split("/")
    .slice(1)
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"))
    .join(".");
const issue = (pointer: string, message: string, keyword: string): RuleIssue => ({ pointer, path: pathOf(pointer), message, keyword });
const esc = (segment: string | number) => String(segment).replaceAll("~", "~0").replaceAll("/", "~1");

const scalar = { type: ["string", "number", "boolean"] };
const stringList = (max: number, maxLength = 200) => ({ type: "array", maxItems: max, items: { type: "string", minLength: 1, maxLength } });

/** JSON Schema of one expression node; `child` is what an operand position holds. */
const exprSchema = (target: Target, child: Record<string, unknown>) => {
  const field = { type: "string", enum: fieldNames(target) };
  const node = (op: string, properties: Record<string, unknown>, required: string[]) => ({
    type: "object",
    properties: { op: { const: op }, ...properties },
    required: ["op", ...required],
    additionalProperties: false,
  });
  return {
    type: "object",
    properties: { op: { type: "string" } },
    required: ["op"],
    discriminator: { propertyName: "op" },
    oneOf: [
      node("all", { of: { type: "array", minItems: 1, maxItems: 100, items: child } }, ["of"]),
      node("any", { of: { type: "array", minItems: 1, maxItems: 100, items: child } }, ["of"]),
      node("not", { expr: child }, ["expr"]),
      ...(["eq", "ne"] as const).map((op) => node(op, { field, value: scalar }, ["field", "value"])),
      ...(["lt", "le", "gt", "ge"] as const).map((op) => node(op, { field, value: { type: "number" } }, ["field", "value"])),
      node("in", { field, values: { type: "array", minItems: 1, maxItems: 1000, items: scalar } }, ["field", "values"]),
      ...(["contains", "starts_with", "ends_with"] as const).map((op) => node(op, { field, value: { type: "string", minLength: 1, maxLength: 1000 } }, ["field", "value"])),
      node("matches", { field, pattern: { type: "string", minLength: 1, maxLength: 1000 } }, ["field", "pattern"]),
      node("exists", { field }, ["field"]),
      node("ip_in", { field, cidrs: { type: "array", minItems: 1, maxItems: 1000, items: { type: "string", maxLength: 64 } } }, ["field", "cidrs"]),
      node("ip_is", { field, classes: { type: "array", minItems: 1, uniqueItems: true, items: { type: "string", enum: IP_CLASSES } } }, ["field", "classes"]),
      node(
        "cidr_prefix_len",
        { field, family: { type: "integer", enum: [4, 6] }, cmp: { type: "string", enum: COMPARATORS }, value: { type: "integer", minimum: 0, maximum: 128 } },
        ["field", "cmp", "value"],
      ),
      node(
        "time_between",
        {
          hours: {
            type: "object",
            properties: { from: { type: "integer", minimum: 0, maximum: 23 }, to: { type: "integer", minimum: 0, maximum: 24 } },
            required: ["from", "to"],
            additionalProperties: false,
          },
          weekdays: { type: "array", minItems: 1, uniqueItems: true, items: { type: "string", enum: WEEKDAYS } },
          tz: { type: "string", minLength: 1, maxLength: 64 },
        },
        [],
      ),
    ],
  };
};

const documentSchema = (target: Target, when: Record<string, unknown>, defs?: Record<string, unknown>) => ({
  $id: `portcullis:rule:${target}${defs ? "" : ":document"}`,
  type: "object",
  properties: {
    name: { type: "string", pattern: NAME_PATTERN },
    description: { type: "string", maxLength: 2000 },
    target: { const: target },
    when,
    outcome: { type: "string", enum: DECISIONS },
    approvals: { type: "integer", minimum: 1, maximum: 10 },
    priority: { type: "integer", minimum: 0, maximum: 10000 },
    mode: { type: "string", enum: RULE_MODES },
    tags: stringList(32, 64),
    controls: stringList(32, 100),
  },
  required: ["name", "target", "when", "outcome"],
  additionalProperties: false,
  ...(defs ? { $defs: defs } : {}),
});

/** The complete JSON Schema of a rule document for one target (served for editors; same rules as save). */
export const ruleJsonSchema = (target: Target) =>
  documentSchema(target, { $ref: "#/$defs/expr" }, { expr: exprSchema(target, { $ref: "#/$defs/expr" }) });

// Compiled on first use (tens of ms), not at import: CLI commands that never validate stay quick.
// Validation walks the tree node by node with these, so one bad node never hides problems in others.
let compiled: { documentValidators: Record<Target, ValidateFunction>; nodeValidators: Record<Target, ValidateFunction> } | undefined;
const validators = () => {
  if (compiled) return compiled;
  const ajv = new Ajv({ allErrors: true, discriminator: true, strict: true, allowUnionTypes: true, verbose: true });
  const perTarget = (schema: (t: Target) => object) => Object.fromEntries(TARGETS.map((t) => [t, ajv.compile(schema(t))])) as Record<Target, ValidateFunction>;
  const documentValidators = perTarget((t) => documentSchema(t, { type: "object" }));
  const nodeValidators = perTarget((t) => exprSchema(t, { type: "object" }));
  // The full recursive schema is compiled too, so a mistake in it fails here, not in someone's editor.
  perTarget(ruleJsonSchema);
  return (compiled = { documentValidators, nodeValidators });
};

const describeAjvError = (e: ErrorObject, target: Target, base = ""): RuleIssue => {
  const at = base + e.instancePath;
  switch (e.keyword) {
    case "discriminator": {
      const p = e.params as { error: string; tag: string; tagValue?: unknown };
      if (p.error === "mapping") {
        const hint = typeof p.tagValue === "string" ? closest(p.tagValue, OPS) : undefined;
        return issue(`${at}/op`, `unknown operator ${JSON.stringify(p.tagValue)}${hint ? `; did you mean "${hint}"?` : ""} (operators: ${OPS.join(", ")})`, "op");
      }
      return issue(`${at}/op`, "an expression needs an op (a string naming the operator)", "op");
    }
    case "additionalProperties": {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      return issue(`${at}/${esc(extra)}`, `unknown property "${extra}"`, "unknown_property");
    }
    case "required": {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return issue(`${at}/${esc(missing)}`, `"${missing}" is required`, "required");
    }
    case "enum": {
      if (at.endsWith("/field")) {
        return unknownField(at, e.data, target);
      }
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      return issue(at, `must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")}`, "enum");
    }
    case "const":
      if (at === "/target") return issue(at, `must be one of ${TARGETS.join(", ")}`, "enum");
      return issue(at, `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`, "const");
    case "pattern":
      return issue(at, "must be lowercase letters, digits and hyphens, starting with a letter or digit, at most 63 characters", "pattern");
    default:
      return issue(at, e.message ?? "is invalid", e.keyword);
  }
};

const unknownField = (pointer: string, value: unknown, target: Target): RuleIssue => {
  const hint = typeof value === "string" ? closest(value, fieldNames(target)) : undefined;
  return issue(pointer, `unknown field ${JSON.stringify(value)} for target ${target}${hint ? `; did you mean "${hint}"?` : ""}`, "unknown_field");
};

/** Depth and size of arbitrary JSON without recursion, so hostile nesting cannot overflow the stack. */
const checkSize = (root: unknown): RuleIssue | undefined => {
  const stack: [unknown, string, number][] = [[root, "", 0]];
  let nodes = 0;
  while (stack.length) {
    const [value, pointer, depth] = stack.pop()!;
    if (value === null || typeof value !== "object") continue;
    if (++nodes > MAX_NODES * 4) return issue(pointer, `the rule is too large (more than ${MAX_NODES} expression nodes)`, "too_large");
    if (depth > MAX_DEPTH * 2 + 2) return issue(pointer, `expressions may nest at most ${MAX_DEPTH} levels deep`, "too_deep");
    for (const [k, v] of Object.entries(value)) stack.push([v, `${pointer}/${esc(k)}`, depth + 1]);
  }
  return undefined;
};

const valueMatchesType = (spec: FieldSpec, value: unknown): string | undefined => {
  switch (spec.type) {
    case "string":
      if (typeof value !== "string") return `must be a string (the field is a string; no coercion)`;
      if (spec.enum && !spec.enum.includes(value)) return `must be one of ${spec.enum.map((v) => JSON.stringify(v)).join(", ")}`;
      return undefined;
    case "string_list":
      return typeof value === "string" ? undefined : "must be a string (an element of the list)";
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) return "must be an integer (the field is an integer; no coercion)";
      return undefined;
    case "number":
      return typeof value === "number" ? undefined : "must be a number (no coercion)";
    case "boolean":
      return typeof value === "boolean" ? undefined : "must be true or false (the field is a boolean; no coercion)";
    case "ip":
      return typeof value === "string" && normalizeIp(value) !== null ? undefined : "must be an IPv4 or IPv6 address";
    case "cidr":
      return typeof value === "string" && normalizeCidr(value) !== null ? undefined : "must be a CIDR range such as 203.0.113.0/24";
    case "timestamp":
      return typeof value === "string" && isIsoTimestamp(value) ? undefined : "must be an ISO 8601 time with offset";
  }
};

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
export const isIsoTimestamp = (s: string) => ISO.test(s) && !Number.isNaN(Date.parse(s));

const validTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

const OPS_FOR_TYPE: Record<string, readonly string[]> = {
  eq: ["string", "integer", "number", "boolean", "ip", "cidr"],
  ne: ["string", "integer", "number", "boolean", "ip", "cidr"],
  lt: ["integer", "number"],
  le: ["integer", "number"],
  gt: ["integer", "number"],
  ge: ["integer", "number"],
  in: ["string", "integer", "number", "ip", "cidr"],
  contains: ["string", "string_list"],
  starts_with: ["string"],
  ends_with: ["string"],
  matches: ["string"],
  exists: ["string", "integer", "number", "boolean", "ip", "cidr", "timestamp", "string_list"],
  ip_in: ["ip", "cidr"],
  ip_is: ["ip", "cidr"],
  cidr_prefix_len: ["cidr"],
};

/** The typed pass over an expression that already has the schema's shape. */
const checkTypes = (expr: Expr, pointer: string, target: Target, out: RuleIssue[]) => {
  const catalogue = CATALOGUE[target];
  switch (expr.op) {
    case "all":
    case "any":
    case "not":
      return;
    case "time_between":
      if (!expr.hours && !expr.weekdays) out.push(issue(pointer, "give hours, weekdays or both", "required"));
      if (expr.hours && expr.hours.from === expr.hours.to) out.push(issue(`${pointer}/hours`, "from and to are equal: the window is empty", "empty_window"));
      if (expr.tz !== undefined && !validTimeZone(expr.tz)) out.push(issue(`${pointer}/tz`, `unknown time zone ${JSON.stringify(expr.tz)} (use an IANA name such as Europe/Berlin)`, "time_zone"));
      return;
  }
  const spec = catalogue[expr.field]!;
  const allowed = OPS_FOR_TYPE[expr.op]!;
  if (!allowed.includes(spec.type)) {
    out.push(issue(`${pointer}/op`, `${expr.op} does not apply to ${expr.field}, a ${spec.type} field (it applies to ${allowed.join(", ")} fields)`, "op_type"));
    return;
  }
  switch (expr.op) {
    case "eq":
    case "ne": {
      const problem = valueMatchesType(spec, expr.value);
      if (problem) out.push(issue(`${pointer}/value`, `${problem}: ${expr.field} is ${describeType(spec)}`, "value_type"));
      return;
    }
    case "lt":
    case "le":
    case "gt":
    case "ge":
      if (spec.type === "integer" && !Number.isInteger(expr.value)) out.push(issue(`${pointer}/value`, `${expr.field} is an integer; compare it with an integer`, "value_type"));
      return;
    case "in":
      expr.values.forEach((v, i) => {
        const problem = valueMatchesType(spec, v);
        if (problem) out.push(issue(`${pointer}/values/${i}`, `${problem}: ${expr.field} is ${describeType(spec)}`, "value_type"));
      });
      return;
    case "ip_in":
      expr.cidrs.forEach((c, i) => {
        if (normalizeCidr(c) === null && normalizeIp(c) === null) out.push(issue(`${pointer}/cidrs/${i}`, `${JSON.stringify(c)} is not an IP address or CIDR range`, "cidr"));
      });
      return;
    case "matches": {
      const compiled = compileSafeRegex(expr.pattern);
      if (!compiled.ok) out.push(issue(`${pointer}/pattern`, compiled.message, "regex"));
      return;
    }
    case "cidr_prefix_len":
      if (expr.family === 4 && expr.value > 32) out.push(issue(`${pointer}/value`, "an IPv4 prefix is at most 32", "value_range"));
      return;
  }
};

const describeType = (spec: FieldSpec) => (spec.enum ? `one of ${spec.enum.join(", ")}` : `a ${spec.type}`);

const ajvIssues = (validate: ValidateFunction, target: Target, base: string, out: RuleIssue[]) => {
  const seen = new Set(out.map((i) => `${i.pointer}\u0000${i.message}`));
  for (const e of validate.errors ?? []) {
    // A discriminator failure also reports the oneOf it belongs to; the first says it precisely.
    if (e.keyword === "oneOf") continue;
    // A missing op is also reported by `required`, which says it better.
    if (e.keyword === "discriminator" && (e.params as { error: string }).error !== "mapping") continue;
    const described = describeAjvError(e, target, base);
    const key = `${described.pointer}\u0000${described.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(described);
    }
  }
};

/** Shape of every node (each reported on its own), then the typed pass on nodes whose shape is right. */
const checkExpression = (value: unknown, pointer: string, target: Target, depth: number, out: RuleIssue[], count: { n: number }) => {
  if (++count.n === MAX_NODES + 1) out.push(issue(pointer, `at most ${MAX_NODES} expression nodes per rule`, "too_large"));
  if (count.n > MAX_NODES) return;
  if (depth > MAX_DEPTH) {
    out.push(issue(pointer, `expressions may nest at most ${MAX_DEPTH} levels deep`, "too_deep"));
    return;
  }
  const validate = validators().nodeValidators[target];
  if (!validate(value)) {
    ajvIssues(validate, target, pointer, out);
  } else {
    const expr = value as Expr;
    checkTypes(expr, pointer, target, out);
  }
  // Children are checked even when this node is malformed, so every problem shows in one pass.
  const node = value as { op?: unknown; of?: unknown; expr?: unknown };
  if (node.op === "all" || node.op === "any") {
    if (Array.isArray(node.of)) node.of.forEach((child, i) => child !== null && typeof child === "object" && !Array.isArray(child) && checkExpression(child, `${pointer}/of/${i}`, target, depth + 1, out, count));
  } else if (node.op === "not" && node.expr !== null && typeof node.expr === "object" && !Array.isArray(node.expr)) {
    checkExpression(node.expr, `${pointer}/expr`, target, depth + 1, out, count);
  }
};

/** Every problem with a rule document; empty when it can be saved. */
export const validateRuleDocument = (doc: unknown): RuleIssue[] => {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return [issue("", "a rule must be a JSON object", "type")];
  const sized = checkSize(doc);
  if (sized) return [sized];
  const target = (doc as { target?: unknown }).target;
  if (!isTarget(target)) {
    // Report the target alone: field names cannot be checked without knowing it.
    return [target === undefined ? issue("/target", `"target" is required (${TARGETS.join(" or ")})`, "required") : issue("/target", `must be one of ${TARGETS.join(", ")}`, "enum")];
  }
  const out: RuleIssue[] = [];
  const validate = validators().documentValidators[target];
  if (!validate(doc)) ajvIssues(validate, target, "", out);
  const rule = doc as RuleDocument;
  // Names that are also paths under /rules would be unreachable by GET /rules/{name}.
  if (typeof rule.name === "string" && RESERVED_NAMES.includes(rule.name))
    out.push(issue("/name", `"${rule.name}" is reserved (it is a path under /rules); choose another name`, "reserved"));
  if (rule.when !== null && typeof rule.when === "object" && !Array.isArray(rule.when)) checkExpression(rule.when, "/when", target, 1, out, { n: 0 });
  if (rule.approvals !== undefined && rule.outcome !== "REQUIRE_APPROVAL")
    out.push(issue("/approvals", "approvals applies only to outcome REQUIRE_APPROVAL", "approvals"));
  return out;
};

// ---- decision inputs -----------------------------------------------------------------------------

type InputIssue = { pointer: string; path: string; message: string };

/** Nested JSON Schema of the input a target accepts (derived fields excluded). */
export const inputJsonSchema = (target: Target) => {
  const root: Record<string, unknown> = { type: "object", properties: {}, additionalProperties: false };
  for (const [name, spec] of Object.entries(CATALOGUE[target])) {
    if (spec.derived) continue;
    const parts = name.split(".");
    let node = root as { properties: Record<string, unknown> };
    for (const part of parts.slice(0, -1)) {
      node.properties[part] ??= { type: "object", properties: {}, additionalProperties: false };
      node = node.properties[part] as { properties: Record<string, unknown> };
    }
    node.properties[parts[parts.length - 1]!] = leafSchema(spec);
  }
  return root;
};

const leafSchema = (spec: FieldSpec): Record<string, unknown> => {
  switch (spec.type) {
    case "string":
      return spec.enum ? { type: "string", enum: spec.enum } : { type: "string", maxLength: 10_000 };
    case "integer":
      return { type: "integer", ...(spec.min !== undefined ? { minimum: spec.min } : {}), ...(spec.max !== undefined ? { maximum: spec.max } : {}) };
    case "number":
      return { type: "number" };
    case "boolean":
      return { type: "boolean" };
    case "ip":
      return { type: "string", format: "pc-ip" };
    case "cidr":
      return { type: "string", format: "pc-cidr" };
    case "timestamp":
      return { type: "string", format: "pc-timestamp" };
    case "string_list":
      return { type: "array", maxItems: 100, items: { type: "string", maxLength: 1000 } };
  }
};

let inputCompiled: Record<Target, ValidateFunction> | undefined;
const inputValidators = () => {
  if (inputCompiled) return inputCompiled;
  const inputAjv = new Ajv({ allErrors: true, strict: true });
  inputAjv.addFormat("pc-ip", { type: "string", validate: (s: string) => s.length <= 64 && normalizeIp(s) !== null });
  inputAjv.addFormat("pc-cidr", { type: "string", validate: (s: string) => s.length <= 64 && normalizeCidr(s) !== null });
  inputAjv.addFormat("pc-timestamp", { type: "string", validate: isIsoTimestamp });
  return (inputCompiled = Object.fromEntries(TARGETS.map((t) => [t, inputAjv.compile(inputJsonSchema(t))])) as Record<Target, ValidateFunction>);
};

const FORMAT_MESSAGES: Record<string, string> = {
  "pc-ip": "must be an IPv4 or IPv6 address",
  "pc-cidr": "must be a CIDR range such as 203.0.113.0/24",
  "pc-timestamp": "must be an ISO 8601 time with offset",
};

/** Problems with a decision input for `target`, each with its pointer; derived fields are refused. */
export const validateInput = (target: Target, input: unknown): InputIssue[] => {
  if (input === null || typeof input !== "object" || Array.isArray(input)) return [{ pointer: "", path: "", message: "the input must be a JSON object" }];
  const validate = inputValidators()[target];
  if (validate(input)) return [];
  const out: InputIssue[] = [];
  for (const e of validate.errors ?? []) {
    let pointer = e.instancePath;
    let message = e.message ?? "is invalid";
    if (e.keyword === "additionalProperties") {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      pointer = `${pointer}/${esc(extra)}`;
      const dotted = pathOf(pointer);
      const spec = CATALOGUE[target][dotted];
      if (spec?.derived) message = `${dotted} is computed by the engine and cannot be given`;
      else {
        const hint = closest(dotted, fieldNames(target));
        message = `unknown field for target ${target}${hint ? `; did you mean "${hint}"?` : ""}`;
      }
    } else if (e.keyword === "format") {
      message = FORMAT_MESSAGES[(e.params as { format: string }).format] ?? message;
    } else if (e.keyword === "type") {
      message = `${message} (no coercion)`;
    }
    out.push({ pointer, path: pathOf(pointer), message });
  }
  return out;
};
