// pino settings: JSON lines, request id on every line, and redaction of anything secret-shaped.
import type { FastifyServerOptions } from "fastify";
import type { Config } from "../config/index.ts";

const SECRET_KEYS = ["authorization", "x-api-key", "x-honeypot-key", "cookie", "password", "token", "secret", "api_key", "apiKey", "privateKey", "bootstrapAdminToken", "databaseUrl"];

/** Redaction paths for each secret key at the top level and a few levels down. */
export const REDACT_PATHS = SECRET_KEYS.flatMap((k) => {
  const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
  const dot = key.startsWith("[") ? "" : ".";
  return [`${key}`, `*${dot}${key}`, `*.*${dot}${key}`, `*.*.*${dot}${key}`, `req.headers${dot}${key}`];
});

export const loggerOptions = (config: Config, stream?: NodeJS.WritableStream): FastifyServerOptions["logger"] => ({
  level: config.log.level,
  redact: { paths: REDACT_PATHS, censor: "[redacted]" },
  ...(stream ? { stream } : {}),
});
