// Leak detection for the whole suite: every test app's log lines are scanned, when its test file
// ends, for the credentials that file used or received (passwords, API keys, access and refresh
// tokens) and for anything shaped like one of our credentials.
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";

const known = new Set<string>();
const streams: string[][] = [];

// Credentials we mint: API keys, refresh tokens, and JWS compact tokens.
const SHAPES = [/pc_[A-Za-z0-9_-]{43}/, /pcr_[A-Za-z0-9_-]{43}/, /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{20,}/];
const SECRET_FIELD = /(password|token|secret|^key$)/i;

export const rememberSecret = (value: unknown) => {
  if (typeof value === "string" && value.length >= 8) known.add(value);
};

export const watchLogs = (lines: string[]) => {
  streams.push(lines);
};

const collect = (value: unknown, depth = 0) => {
  if (value === null || typeof value !== "object" || depth > 6) return;
  for (const [key, inner] of Object.entries(value)) {
    if (SECRET_FIELD.test(key)) rememberSecret(inner);
    else collect(inner, depth + 1);
  }
};

/** Wraps app.inject so every credential sent or received is remembered. */
export const recordCredentials = (app: FastifyInstance) => {
  const inject = app.inject.bind(app) as (opts: InjectOptions) => Promise<LightMyRequestResponse>;
  (app as unknown as { inject: unknown }).inject = async (opts: InjectOptions | string) => {
    const options: InjectOptions = typeof opts === "string" ? { url: opts } : opts;
    const auth = options.headers?.authorization;
    if (typeof auth === "string") rememberSecret(auth.replace(/^Bearer\s+/i, ""));
    if (options.payload && typeof options.payload === "object") collect(options.payload);
    const res = await inject(options);
    if ((res.headers["content-type"] ?? "").toString().includes("json")) {
      try {
        collect(JSON.parse(res.body));
      } catch {
        // not JSON after all
      }
    }
    return res;
  };
};

/** The lines that contain one of `secrets` or something shaped like a credential. */
export const findLeaks = (lines: Iterable<string>, secrets: Iterable<string>): string[] => {
  const list = [...secrets];
  const out: string[] = [];
  for (const line of lines) if (SHAPES.some((re) => re.test(line)) || list.some((secret) => line.includes(secret))) out.push(line);
  return out;
};

/** Leaks in every log line the test apps of this file wrote. */
export const leakedLines = (): string[] => streams.flatMap((lines) => findLeaks(lines, known));

export const scannedLineCount = () => streams.reduce((n, s) => n + s.length, 0);
