// pino settings: JSON lines with the request id on every line, and secrets masked at any depth.
// Masking walks each logged object by key name rather than using pino's path-based redaction: paths
// cannot say "at any depth", and path redaction also runs on every per-request child logger, which
// cost ~5% of the enforcement check's throughput.
import type { FastifyServerOptions } from "fastify";
import type { Config } from "../config/index.ts";

/** Keys whose values never reach a log line, compared case-insensitively with -, _ removed. */
const SECRET_KEY_NAMES = [
  "authorization",
  "xapikey",
  "xhoneypotkey",
  "cookie",
  "setcookie",
  "password",
  "token",
  "secret",
  "apikey",
  "privatekey",
  "bootstrapadmintoken",
  "databaseurl",
  "redisurl",
  "refreshtoken",
  "accesstoken",
];
const SECRET_KEYS = new Set(SECRET_KEY_NAMES);
const isSecretKey = (key: string) => SECRET_KEYS.has(key.toLowerCase().replace(/[-_]/g, ""));
export const REDACTED = "[redacted]";

/** A copy of `value` with secret-named keys masked at any depth; unchanged objects are returned as is. */
export const maskSecrets = (value: unknown, depth = 0, seen = new WeakSet<object>()): unknown => {
  if (value === null || typeof value !== "object" || depth > 16) return value;
  if (seen.has(value)) return value;
  seen.add(value);
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, i) => {
      const masked = maskSecrets(item, depth + 1, seen);
      if (masked !== item) (copy ??= [...value])[i] = masked;
    });
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  const source = value as Record<string, unknown>;
  const keys = value instanceof Error ? [...Object.keys(value), "message", "stack"] : Object.keys(value);
  for (const key of keys) {
    const inner = source[key];
    const masked = isSecretKey(key) && inner !== undefined && inner !== null ? REDACTED : maskSecrets(inner, depth + 1, seen);
    if (masked !== inner) {
      copy ??= value instanceof Error ? { type: value.name, message: value.message, stack: value.stack, ...source } : { ...source };
      copy[key] = masked;
    }
  }
  return copy ?? value;
};

// Request and reply objects are left to pino's serializers, which emit method, url, status and never
// headers; copying them here would lose their prototype getters. Everything else (errors and anything
// they carry, class instances included) is walked.
const SERIALIZED_KEYS = new Set(["req", "res"]);
const maskLogObject = (object: Record<string, unknown>): Record<string, unknown> => {
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(object)) {
    if (SERIALIZED_KEYS.has(key)) continue;
    const inner = object[key];
    const masked = isSecretKey(key) && inner !== undefined && inner !== null ? REDACTED : maskSecrets(inner);
    if (masked !== inner) (copy ??= { ...object })[key] = masked;
  }
  return copy ?? object;
};

// Query parameters that carry credentials (an OIDC callback's code and state, a token in a link).
const SECRET_QUERY_PARAM = /^(code|state|token|access_token|refresh_token|id_token|key|api_key|password|session_state)$/i;

/** The request URL as logged: credential-bearing query values replaced. */
export const maskRequestUrl = (url: string): string => {
  const q = url.indexOf("?");
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // keep the raw name
      }
      return eq >= 0 && SECRET_QUERY_PARAM.test(decoded) ? `${name}=${REDACTED}` : pair;
    });
  return `${url.slice(0, q)}?${params.join("&")}`;
};

type RawRequest = { method: string; url: string; ip?: string; socket?: { remotePort?: number } };

export const loggerOptions = (config: Config, stream?: NodeJS.WritableStream): FastifyServerOptions["logger"] => ({
  level: config.log.level,
  formatters: { log: maskLogObject },
  serializers: {
    req: (req: RawRequest) => ({ method: req.method, url: maskRequestUrl(req.url), remoteAddress: req.ip, remotePort: req.socket?.remotePort }),
  },
  ...(stream ? { stream } : {}),
});
