// HTTP client for commands that manage a running server: they go through the API so they are
// authorised and audited like any other client. PORTCULLIS_URL picks the server; the credential is
// PORTCULLIS_TOKEN (an API key or access token) if set, else the session `portcullis login` stored,
// whose access token is refreshed (and the rotated pair saved) when it expires.
import { credentialStore, type StoredCredentials } from "./credentials.ts";

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly problem?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export type ApiClient = {
  /** The server's base URL, without a trailing slash. */
  readonly base: string;
  /** Where the credential comes from: PORTCULLIS_TOKEN, the credential store, or none at all. */
  readonly auth: "env" | "stored" | "none";
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
  text(path: string): Promise<string>;
};

// Refresh this long before expiry, so a token does not lapse between our check and the server's.
const REFRESH_MARGIN_MS = 15_000;
// A refresh holds the credential lock; it must give up well before other processes call the lock stale.
const REFRESH_TIMEOUT_MS = 10_000;
// Refresh answers that mean the stored session is over: only a new login helps.
const SESSION_OVER = new Set(["REFRESH_TOKEN_INVALID", "REFRESH_TOKEN_EXPIRED", "REFRESH_TOKEN_REUSED"]);
// Access refusals for a stored session that a refresh cannot fix.
const LOGIN_AGAIN = new Set(["SESSION_REVOKED", "SESSION_EXPIRED", "USER_DISABLED", "ACCESS_TOKEN_INVALID"]);

export const serverUrl = (env: NodeJS.ProcessEnv = process.env) => (env.PORTCULLIS_URL ?? "http://127.0.0.1:8000").replace(/\/+$/, "");

/** A problem+json answer as a CliError whose message is "CODE: detail". */
export const problemError = async (response: Response, hint = ""): Promise<CliError> => {
  const text = await response.text();
  let problem: Record<string, unknown> | undefined;
  try {
    problem = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not problem+json
  }
  const message = problem?.code ? `${String(problem.code)}: ${String(problem.detail ?? problem.title)}` : `HTTP ${response.status}: ${text.slice(0, 200)}`;
  return new CliError(`${message}${hint}`, 1, problem);
};

export const fetchApi = async (base: string, path: string, init: RequestInit): Promise<Response> => {
  try {
    return await fetch(`${base}${path}`, init);
  } catch (error) {
    if ((error as Error).name === "TimeoutError") throw new CliError(`the Portcullis server at ${base} did not answer in time`, 3);
    throw new CliError(`cannot reach the Portcullis server at ${base} (${(error as Error).cause ?? (error as Error).message}); is it running? set PORTCULLIS_URL`, 3);
  }
};

/** Turns a token answer (login or refresh) into what the store keeps; `sentAt` errs towards expiring early. */
export const toStored = (base: string, username: string, tokens: TokenAnswer, sentAt: number): StoredCredentials => ({
  url: base,
  username,
  access_token: tokens.access_token,
  access_expires_at: new Date(sentAt + tokens.expires_in * 1000).toISOString(),
  refresh_token: tokens.refresh_token,
  session_id: tokens.session_id,
  stored_at: new Date().toISOString(),
});

export type TokenAnswer = {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  session_id: string;
  password_change_required: boolean;
};

const expiresSoon = (c: StoredCredentials) => {
  const at = Date.parse(c.access_expires_at);
  return !Number.isFinite(at) || at - Date.now() < REFRESH_MARGIN_MS;
};

export const apiClient = (env: NodeJS.ProcessEnv = process.env, options: { anonymous?: boolean } = {}): ApiClient => {
  const base = serverUrl(env);
  const envToken = env.PORTCULLIS_TOKEN;
  const auth = options.anonymous ? "none" : envToken ? "env" : "stored";
  const store = credentialStore(env);
  let session: StoredCredentials | undefined;

  /** Exchanges the session's refresh token for a new pair under the store's lock, and saves it. */
  const refresh = async (stale: StoredCredentials): Promise<StoredCredentials> => {
    const outcome = await store.update<StoredCredentials | CliError>(base, async (current) => {
      if (!current) return { next: current, result: new CliError(`not logged in to ${base} any more (logged out meanwhile): run \`portcullis login\``, 2) };
      // Another process rotated the pair while we waited for the lock: its tokens are ours too.
      if (current.refresh_token !== stale.refresh_token) return { next: current, result: current };
      const sentAt = Date.now();
      const response = await fetchApi(base, "/auth/refresh", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
        signal: AbortSignal.timeout(REFRESH_TIMEOUT_MS),
      });
      if (!response.ok) {
        const error = await problemError(response);
        const code = String(error.problem?.code ?? "");
        if (!SESSION_OVER.has(code)) return { next: current, result: error };
        // The refresh token is worthless now; keep nothing that looks like a session.
        return { next: undefined, result: new CliError(`your session on ${base} has ended (${error.message}); run \`portcullis login\``, 1, error.problem) };
      }
      const next = toStored(base, current.username, (await response.json()) as TokenAnswer, sentAt);
      return { next, result: next };
    });
    if (outcome instanceof CliError) throw outcome;
    return outcome;
  };

  const bearer = async (): Promise<string | undefined> => {
    if (auth === "none") return undefined;
    if (auth === "env") return envToken;
    session ??= store.get(base);
    if (!session) throw new CliError(`not logged in to ${base}: run \`portcullis login\`, or set PORTCULLIS_TOKEN to an API key`, 2);
    if (expiresSoon(session)) session = await refresh(session);
    return session.access_token;
  };

  const send = async (method: string, path: string, body?: unknown): Promise<Response> => {
    const attempt = async () => {
      const token = await bearer();
      const headers: Record<string, string> = { accept: "application/json, text/plain" };
      if (token) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers["content-type"] = "application/json";
      return fetchApi(base, path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    };
    let response = await attempt();
    if (response.ok) return response;
    let error = await problemError(response);
    if (auth === "stored" && response.status === 401 && error.problem?.code === "ACCESS_TOKEN_EXPIRED" && session) {
      // Our clock said the token was still good; the server's disagrees. Refresh and retry, once.
      session = await refresh(session);
      response = await attempt();
      if (response.ok) return response;
      error = await problemError(response);
    }
    const code = String(error.problem?.code);
    if (auth === "stored" && response.status === 401 && LOGIN_AGAIN.has(code)) throw new CliError(`${error.message}; run \`portcullis login\``, 1, error.problem);
    if (code === "PASSWORD_CHANGE_REQUIRED") throw new CliError(`${error.message} (run \`portcullis password\`)`, 1, error.problem);
    throw error;
  };

  return {
    base,
    auth,
    request: async <T>(method: string, path: string, body?: unknown) => (await (await send(method, path, body)).json()) as T,
    text: async (path) => (await send("GET", path)).text(),
  };
};

export const query = (params: Record<string, string | number | boolean | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
};
