// Builds the effective configuration from defaults, profile defaults, a config file, env and CLI flags,
// recording where every value came from so errors and `config show` can name the exact source.
import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { extname, isAbsolute, resolve } from "node:path";
import ipaddr from "ipaddr.js";
import YAML from "yaml";
import type { z } from "zod";
import {
  CONFIG_LEAVES,
  CONFIG_SECTIONS,
  PROFILES,
  configSchema,
  maskValue,
  type Config,
  type Leaf,
  type Profile,
} from "./schema.ts";

export type SourceKind = "default" | "profile" | "file" | "env" | "flag";

export interface Source {
  kind: SourceKind;
  /** "default", "profile:prod", "/etc/portcullis.yaml", "PORTCULLIS_PORT", "--port" */
  name: string;
  /** How an interpolated value was produced, e.g. "via file:/run/secrets/key". */
  note?: string;
}

export interface LoadedConfig {
  config: Readonly<Config>;
  /** Keyed by dotted leaf path; every schema leaf is present, unset optional ones as "default". */
  sources: Record<string, Source>;
}

export interface LoadConfigOptions {
  /** Dotted camelCase paths, e.g. { port: 9000, "log.level": "debug" }; undefined values are ignored. */
  flags?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  configFile?: string;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";

  constructor(
    public readonly field: string,
    public readonly source: string,
    message: string,
  ) {
    super(message);
  }
}

export const ENV_PREFIX = "PORTCULLIS_";
export const CONFIG_FILE_ENV = "PORTCULLIS_CONFIG";

const DEFAULT_SOURCE: Source = Object.freeze({ kind: "default", name: "default" });

const PROFILE_DEFAULTS: Record<Profile, Record<string, unknown>> = {
  local: {},
  dev: { "log.level": "debug" },
  staging: {},
  prod: {},
};

/** "dataDir" -> "PORTCULLIS_DATA_DIR", "log.level" -> "PORTCULLIS_LOG__LEVEL". */
export function envVarName(path: string): string {
  return ENV_PREFIX + path.split(".").map(screamingSnake).join("__");
}

/** "log.level" -> "--log-level"; only used to name the source of a flag value. */
export function flagName(path: string): string {
  return `--${path.split(".").map(kebab).join("-")}`;
}

/** "env PORTCULLIS_PORT", "file /etc/x.yaml via file:/run/key", "flag --port", "default", "profile:prod". */
export function describeSource(source: Source): string {
  const base =
    source.kind === "default" || source.kind === "profile" ? source.name : `${source.kind} ${source.name}`;
  return source.note ? `${base} ${source.note}` : base;
}

/** True for 127.0.0.0/8, ::1 (also IPv4-mapped and bracketed forms) and "localhost". */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h === "localhost" || h === "localhost.") return true;
  // isIP first: ipaddr.js also accepts legacy forms like "0x7f.1" that listen() would not.
  if (isIP(h) === 0) return false;
  try {
    return ipaddr.process(h).range() === "loopback";
  } catch {
    return false;
  }
}

interface Entry {
  path: string;
  /** After interpolation and coercion; what is handed to zod. */
  value: unknown;
  /** After interpolation, before coercion; what error messages show. */
  shown: unknown;
  source: Source;
}

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = resolve(options.cwd ?? process.cwd());

  const fileEntries = readFileLayer(options.configFile, env, cwd);
  const envEntries = readEnvLayer(env, cwd);
  const flagEntries = readFlagLayer(options.flags ?? {});

  const profile = resolveProfile([...fileEntries, ...envEntries, ...flagEntries]);
  const profileSource: Source = { kind: "profile", name: `profile:${profile}` };
  const profileEntries: Entry[] = Object.entries(PROFILE_DEFAULTS[profile]).map(([path, value]) => ({
    path,
    value,
    shown: value,
    source: profileSource,
  }));

  const raw: Record<string, unknown> = {};
  const sources = new Map<string, Source>();
  const shown = new Map<string, unknown>();
  for (const entry of [...profileEntries, ...fileEntries, ...envEntries, ...flagEntries]) {
    setPath(raw, entry.path, entry.value);
    // A value replaces whatever was recorded at, above or below its path.
    for (const key of [...sources.keys()]) {
      if (key.startsWith(`${entry.path}.`) || entry.path.startsWith(`${key}.`)) {
        sources.delete(key);
        shown.delete(key);
      }
    }
    sources.set(entry.path, entry.source);
    shown.set(entry.path, entry.shown);
  }

  const sourceOf = (field: string): Source => lookupSource(sources, field);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw issueToError(parsed.error.issues, raw, shown, sourceOf);
  }
  const config = parsed.data;
  config.dataDir = resolve(cwd, config.dataDir);
  if (config.http.tlsCertFile) config.http.tlsCertFile = resolve(cwd, config.http.tlsCertFile);
  if (config.http.tlsKeyFile) config.http.tlsKeyFile = resolve(cwd, config.http.tlsKeyFile);

  checkCrossField(config, sourceOf);
  if (config.profile === "prod") checkProd(config, sourceOf);

  const allSources: Record<string, Source> = {};
  for (const path of CONFIG_LEAVES.keys()) allSources[path] = sourceOf(path);
  return { config: deepFreeze(config), sources: deepFreeze(allSources) };
}

// ---------------------------------------------------------------- sources

function readFileLayer(configFile: string | undefined, env: NodeJS.ProcessEnv, cwd: string): Entry[] {
  let origin: string;
  let given: string | undefined;
  if (configFile !== undefined && configFile !== "") {
    given = configFile;
    origin = "argument";
  } else {
    given = nonEmpty(env[CONFIG_FILE_ENV]);
    origin = `env ${CONFIG_FILE_ENV}`;
  }
  if (given === undefined) return [];
  const file = resolve(cwd, given);
  const fail = (reason: string) =>
    new ConfigError("configFile", origin, `invalid config: config file ${file} (from ${origin}): ${reason}`);

  const ext = extname(file).toLowerCase();
  if (ext !== ".json" && ext !== ".yaml" && ext !== ".yml") {
    throw fail(`unsupported extension "${ext}"; use .json, .yaml or .yml`);
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw fail(`cannot be read (${errorCode(err)})`);
  }
  let doc: unknown;
  try {
    doc = ext === ".json" ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw fail(`cannot be parsed as ${ext === ".json" ? "JSON" : "YAML"}: ${firstLine(err)}`);
  }
  if (doc === null || doc === undefined) return [];
  if (!isPlainObject(doc)) throw fail("the top level must be a mapping of keys");

  const source: Source = { kind: "file", name: file };
  const out: Entry[] = [];
  flattenFile(doc, "", source, env, cwd, out);
  return out;
}

function flattenFile(
  value: unknown,
  prefix: string,
  source: Source,
  env: NodeJS.ProcessEnv,
  cwd: string,
  out: Entry[],
): void {
  const leaf = prefix ? CONFIG_LEAVES.get(prefix) : undefined;
  if (leaf) {
    // YAML writes an empty value as null; treat it like an absent key so templates can leave blanks.
    if (value === null) return;
    const { value: interpolated, notes } = interpolateDeep(value, prefix, source, env, cwd);
    const withNote = notes.length > 0 ? { ...source, note: `via ${notes.join(", ")}` } : source;
    out.push({ path: prefix, value: coerce(leaf, interpolated), shown: interpolated, source: withNote });
    return;
  }
  if (isPlainObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      flattenFile(child, prefix ? `${prefix}.${key}` : key, source, env, cwd, out);
    }
    return;
  }
  if (value === null && CONFIG_SECTIONS.has(prefix)) return;
  // Unknown key, or a section given a scalar: zod rejects it with the right path.
  out.push({ path: prefix, value, shown: value, source });
}

function readEnvLayer(env: NodeJS.ProcessEnv, cwd: string): Entry[] {
  const out: Entry[] = [];
  // Only names derived from the schema are read, so unrelated PORTCULLIS_* variables used by the
  // CLI client and tests (PORTCULLIS_URL, PORTCULLIS_TOKEN, PORTCULLIS_TEST_DATABASE_URL) are ignored.
  for (const leaf of CONFIG_LEAVES.values()) {
    let name = envVarName(leaf.path);
    let text = nonEmpty(env[name]);
    if (text === undefined && leaf.path === "databaseUrl") {
      name = "DATABASE_URL";
      text = nonEmpty(env[name]);
    }
    if (text === undefined) continue;
    const source: Source = { kind: "env", name };
    const { value, notes } = interpolateString(text, leaf.path, source, env, cwd);
    out.push({
      path: leaf.path,
      value: coerce(leaf, value),
      shown: value,
      source: notes.length > 0 ? { ...source, note: `via ${notes.join(", ")}` } : source,
    });
  }
  return out;
}

function readFlagLayer(flags: Record<string, unknown>): Entry[] {
  const out: Entry[] = [];
  const visit = (value: unknown, path: string) => {
    if (value === undefined) return;
    const leaf = CONFIG_LEAVES.get(path);
    if (!leaf && isPlainObject(value)) {
      for (const [key, child] of Object.entries(value)) visit(child, path ? `${path}.${key}` : key);
      return;
    }
    const source: Source = { kind: "flag", name: flagName(path) };
    if (!leaf) {
      throw new ConfigError(
        path,
        describeSource(source),
        `invalid config: ${path} (from ${describeSource(source)}): unknown setting${suggestion(path)}`,
      );
    }
    out.push({ path, value: coerce(leaf, value), shown: value, source });
  };
  visit(flags, "");
  return out;
}

function resolveProfile(entries: Entry[]): Profile {
  let chosen: Entry | undefined;
  for (const entry of entries) if (entry.path === "profile") chosen = entry;
  if (!chosen) return "local";
  if ((PROFILES as readonly unknown[]).includes(chosen.value)) return chosen.value as Profile;
  const src = describeSource(chosen.source);
  throw new ConfigError(
    "profile",
    src,
    `invalid config: profile = ${show("profile", chosen.shown)} (from ${src}): expected one of: ${PROFILES.join(", ")}`,
  );
}

// ---------------------------------------------------------------- interpolation and coercion

function interpolateDeep(
  value: unknown,
  field: string,
  source: Source,
  env: NodeJS.ProcessEnv,
  cwd: string,
): { value: unknown; notes: string[] } {
  if (typeof value === "string") return interpolateString(value, field, source, env, cwd);
  if (Array.isArray(value)) {
    const notes: string[] = [];
    const items = value.map((item) => {
      if (typeof item !== "string") return item;
      const result = interpolateString(item, field, source, env, cwd);
      notes.push(...result.notes);
      return result.value;
    });
    return { value: items, notes };
  }
  return { value, notes: [] };
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `${VAR}` takes the env var (`$${` is a literal `${`), then a whole value of `file:/path`
 * takes that file's contents, so `file:${CREDENTIALS_DIRECTORY}/key.pem` works.
 */
function interpolateString(
  text: string,
  field: string,
  source: Source,
  env: NodeJS.ProcessEnv,
  cwd: string,
): { value: string; notes: string[] } {
  const src = describeSource(source);
  const fail = (reason: string) => new ConfigError(field, src, `invalid config: ${field} (from ${src}): ${reason}`);
  const notes: string[] = [];
  let out = "";
  let i = 0;
  while (i < text.length) {
    if (text.startsWith("$${", i)) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.startsWith("${", i)) {
      const end = text.indexOf("}", i + 2);
      if (end === -1) throw fail('unterminated "${" (write "$${" for a literal "${")');
      const name = text.slice(i + 2, end);
      if (!VAR_NAME.test(name)) throw fail(`invalid variable reference "\${${name}}"`);
      const replacement = env[name];
      if (replacement === undefined) throw fail(`environment variable ${name} is not set (referenced as \${${name}})`);
      out += replacement;
      notes.push(`\${${name}}`);
      i = end + 1;
      continue;
    }
    out += text[i];
    i += 1;
  }

  if (out.startsWith("file:")) {
    const given = out.slice("file:".length);
    if (given === "") throw fail('"file:" needs a path');
    const file = isAbsolute(given) ? given : resolve(cwd, given);
    let contents: string;
    try {
      contents = readFileSync(file, "utf8");
    } catch (err) {
      throw fail(`cannot read file:${given} (${errorCode(err)})`);
    }
    out = contents.replace(/\r?\n$/, "");
    notes.push(`file:${given}`);
  }
  return { value: out, notes };
}

/** Strings become the leaf's type where that is unambiguous; anything else is left for zod to reject. */
function coerce(leaf: Leaf, value: unknown): unknown {
  if (typeof value !== "string") return value;
  switch (leaf.kind) {
    case "number": {
      const t = value.trim();
      return /^[+-]?\d+(\.\d+)?$/.test(t) ? Number(t) : value;
    }
    case "boolean": {
      const t = value.trim().toLowerCase();
      if (t === "true" || t === "1") return true;
      if (t === "false" || t === "0") return false;
      return value;
    }
    case "array":
      return value
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== "");
    case "enum":
      return value.trim();
    case "string":
      return value;
  }
}

// ---------------------------------------------------------------- validation errors

function issueToError(
  issues: readonly z.core.$ZodIssue[],
  raw: Record<string, unknown>,
  shown: Map<string, unknown>,
  sourceOf: (field: string) => Source,
): ConfigError {
  const issue = issues[0];
  if (!issue) return new ConfigError("", "default", "invalid config");
  // Array element issues point below the leaf ("http.corsOrigins.1"); report the leaf itself.
  const segments: string[] = [];
  for (const part of issue.path) {
    if (typeof part !== "string") break;
    segments.push(part);
  }
  let field = segments.join(".");
  let reason: string;
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    field = field ? `${field}.${key}` : key;
    reason = `unknown key${suggestion(field)}`;
  } else {
    reason = expectation(field, issue);
  }
  const source = describeSource(sourceOf(field));
  const value = shown.has(field) ? shown.get(field) : getPath(raw, field);
  return new ConfigError(field, source, `invalid config: ${field} = ${show(field, value)} (from ${source}): ${reason}`);
}

function expectation(field: string, issue: z.core.$ZodIssue): string {
  const leaf = CONFIG_LEAVES.get(field);
  if (!leaf) {
    const children = CONFIG_SECTIONS.get(field);
    return children ? `expected a mapping with keys: ${children.join(", ")}` : issue.message;
  }
  switch (leaf.kind) {
    case "number": {
      const bounded = leaf.max !== undefined && leaf.max < Number.MAX_SAFE_INTEGER;
      if (leaf.min !== undefined && bounded) return `expected an integer between ${leaf.min} and ${leaf.max}`;
      if (leaf.min !== undefined && leaf.min > Number.MIN_SAFE_INTEGER) return `expected an integer >= ${leaf.min}`;
      return "expected an integer";
    }
    case "boolean":
      return "expected true or false (env vars and flags also accept 1 or 0)";
    case "enum":
      return `expected one of: ${(leaf.options ?? []).join(", ")}`;
    case "array":
      // An element's own rule (a pattern with a message) says more than the generic shape.
      if (issue.code === "invalid_format" && issue.message) return `expected a list of non-empty strings (comma-separated in env vars and flags); ${issue.message}`;
      return "expected a list of non-empty strings (comma-separated in env vars and flags)";
    case "string":
      if (issue.code === "too_small") {
        return issue.minimum === 1 ? "must not be empty" : `must be at least ${String(issue.minimum)} characters`;
      }
      if (issue.code === "invalid_format") return "expected an http:// or https:// URL";
      if (issue.code === "invalid_type") return "expected a string";
      return issue.message;
  }
}

function suggestion(path: string): string {
  // "logLevel" or "http.bodylimitbytes": same letters as a real path, only the dots or case differ.
  const squashed = path.replace(/\./g, "").toLowerCase();
  for (const leaf of CONFIG_LEAVES.keys()) {
    if (leaf !== path && leaf.replace(/\./g, "").toLowerCase() === squashed) return `; did you mean ${leaf}?`;
  }
  const dot = path.lastIndexOf(".");
  const parent = dot === -1 ? "" : path.slice(0, dot);
  const key = path.slice(dot + 1).toLowerCase();
  const candidates = CONFIG_SECTIONS.get(parent) ?? [];
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const lower = candidate.toLowerCase();
    // A truncated or over-long key ("bodyLimit" for "bodyLimitBytes") counts as a near miss.
    const nested = key.length >= 4 && (lower.startsWith(key) || key.startsWith(lower));
    const d = nested ? 1 : editDistance(key, lower);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best === undefined || bestDistance > Math.max(2, Math.floor(key.length / 3))) return "";
  return `; did you mean ${parent ? `${parent}.` : ""}${best}?`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

// ---------------------------------------------------------------- cross-field and profile rules

function refuse(field: string, value: unknown, source: Source, reason: string): ConfigError {
  const src = describeSource(source);
  return new ConfigError(field, src, `invalid config: ${field} = ${show(field, value)} (from ${src}): ${reason}`);
}

function checkCrossField(config: Config, sourceOf: (field: string) => Source): void {
  const { tlsCertFile, tlsKeyFile } = config.http;
  if (tlsCertFile && !tlsKeyFile) {
    throw refuse("http.tlsCertFile", tlsCertFile, sourceOf("http.tlsCertFile"), "http.tlsKeyFile must be set too");
  }
  if (tlsKeyFile && !tlsCertFile) {
    throw refuse("http.tlsKeyFile", tlsKeyFile, sourceOf("http.tlsKeyFile"), "http.tlsCertFile must be set too");
  }

  // Checked here so a bad key stops startup instead of failing the first signature.
  for (const [field, pem] of [["signing.privateKey", config.signing.privateKey], ["auth.jwtPrivateKey", config.auth.jwtPrivateKey]] as const) {
    if (pem === undefined) continue;
    let type: string | undefined;
    try {
      type = createPrivateKey(pem).asymmetricKeyType;
    } catch {
      type = undefined;
    }
    if (type !== "ed25519") {
      const got = type ? ` (got a ${type} key)` : "";
      throw refuse(field, pem, sourceOf(field), `expected a PEM-encoded, unencrypted Ed25519 private key${got}`);
    }
  }

  const oidc = config.auth.oidc;
  if (oidc.issuer || oidc.clientId) {
    for (const field of ["issuer", "clientId"] as const) {
      if (!oidc[field]) throw refuse(`auth.oidc.${field}`, undefined, sourceOf(`auth.oidc.${field}`), "required when single sign-on is configured");
    }
    if (!oidc.redirectUri && !config.publicUrl)
      throw refuse("auth.oidc.redirectUri", undefined, sourceOf("auth.oidc.redirectUri"), "set it, or set publicUrl so it defaults to <publicUrl>/auth/oidc/callback");
    if (!oidc.roleMapping.length && !oidc.defaultRole)
      throw refuse("auth.oidc.roleMapping", [], sourceOf("auth.oidc.roleMapping"), "map at least one claim value to a role, or set auth.oidc.defaultRole");
  }

  if (config.actions.webhooks.length && !config.actions.webhookSecret)
    throw refuse("actions.webhookSecret", undefined, sourceOf("actions.webhookSecret"), "required when actions.webhooks is set (it signs every delivery)");
}

function checkProd(config: Config, sourceOf: (field: string) => Source): void {
  const inProd = "not allowed in the prod profile";
  if (config.signing.privateKey === undefined) {
    throw refuse(
      "signing.privateKey",
      undefined,
      sourceOf("signing.privateKey"),
      `required in the prod profile (set ${envVarName("signing.privateKey")}=file:/path/to/ed25519.pem)`,
    );
  }
  if (config.auth.jwtPrivateKey === undefined) {
    throw refuse(
      "auth.jwtPrivateKey",
      undefined,
      sourceOf("auth.jwtPrivateKey"),
      `required in the prod profile (set ${envVarName("auth.jwtPrivateKey")}=file:/path/to/ed25519.pem)`,
    );
  }
  if (config.sensors.credentials === "encrypted" && config.sensors.credentialKeys.length === 0) {
    throw refuse(
      "sensors.credentialKeys",
      undefined,
      sourceOf("sensors.credentialKeys"),
      `required in the prod profile while sensors.credentials is encrypted (set ${envVarName("sensors.credentialKeys")}=file:/path/to/keys, ` +
        `each key "<id>:<base64 of 32 bytes>", e.g. "k1:$(openssl rand -base64 32)"; or choose sensors.credentials=redacted)`,
    );
  }
  if (config.debug) throw refuse("debug", config.debug, sourceOf("debug"), inProd);
  if (config.log.level === "debug" || config.log.level === "trace") {
    throw refuse("log.level", config.log.level, sourceOf("log.level"), `${inProd}; use info or warn`);
  }
  const token = config.bootstrapAdminToken;
  if (token !== undefined) {
    const weakness = weakTokenReason(token);
    if (weakness) {
      throw refuse(
        "bootstrapAdminToken",
        token,
        sourceOf("bootstrapAdminToken"),
        `${weakness} in the prod profile; generate one with: openssl rand -base64 32`,
      );
    }
  }
  const { tlsCertFile, tlsKeyFile, allowInsecureHttp } = config.http;
  if (!isLoopbackHost(config.host) && !(tlsCertFile && tlsKeyFile) && !allowInsecureHttp) {
    throw refuse(
      "host",
      config.host,
      sourceOf("host"),
      "plain HTTP on a non-loopback address is not allowed in the prod profile; set http.tlsCertFile and " +
        "http.tlsKeyFile, or set http.allowInsecureHttp=true when a TLS-terminating proxy is in front",
    );
  }
}

const WEAK_WORDS = [
  "changeme",
  "admin",
  "administrator",
  "password",
  "passw0rd",
  "portcullis",
  "secret",
  "test",
  "token",
  "default",
  "example",
  "letmein",
  "qwerty",
];
const ONLY_WEAK_WORDS = new RegExp(`^(?:${WEAK_WORDS.join("|")}|\\d)+$`);
const PLACEHOLDER = /change[-_ ]?me|example|placeholder|replace[-_ ]?(?:me|this)|your[-_ ]?(?:admin[-_ ]?)?token|xxxx/;

function weakTokenReason(token: string): string | undefined {
  if (token.length < 32) return "must be at least 32 characters";
  const lower = token.toLowerCase();
  if (PLACEHOLDER.test(lower)) return "looks like a placeholder value";
  if (ONLY_WEAK_WORDS.test(lower.replace(/[^a-z0-9]/g, ""))) return "is made of well-known default words";
  if (new Set(token).size < 8) return "has too few distinct characters";
  return undefined;
}

// ---------------------------------------------------------------- helpers

function show(field: string, value: unknown): string {
  if (value === undefined) return "(unset)";
  const masked = maskValue(field, value);
  let text: string;
  try {
    text = JSON.stringify(masked) ?? String(masked);
  } catch {
    text = String(masked);
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function lookupSource(sources: Map<string, Source>, field: string): Source {
  const exact = sources.get(field);
  if (exact) return exact;
  for (const [key, source] of sources) if (key.startsWith(`${field}.`)) return source;
  const parts = field.split(".");
  for (let i = parts.length - 1; i > 0; i--) {
    const ancestor = sources.get(parts.slice(0, i).join("."));
    if (ancestor) return ancestor;
  }
  return DEFAULT_SOURCE;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (isPlainObject(next)) {
      node = next;
    } else {
      const created: Record<string, unknown> = {};
      node[part] = created;
      node = created;
    }
  }
  node[parts[parts.length - 1] as string] = value;
}

function getPath(target: unknown, path: string): unknown {
  if (path === "") return target;
  let node: unknown = target;
  for (const part of path.split(".")) {
    if (!isPlainObject(node)) return undefined;
    node = node[part];
  }
  return node;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function screamingSnake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

function kebab(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

function errorCode(err: unknown): string {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "string") {
    return err.code === "ENOENT" ? "no such file" : err.code;
  }
  return firstLine(err);
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split("\n")[0] ?? message;
}
