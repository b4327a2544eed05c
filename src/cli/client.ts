// HTTP client for commands that manage a running server: they go through the API so they are
// authorised and audited like any other client. PORTCULLIS_URL and PORTCULLIS_TOKEN configure it.
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
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
  text(path: string): Promise<string>;
};

export const apiClient = (env: NodeJS.ProcessEnv = process.env): ApiClient => {
  const base = (env.PORTCULLIS_URL ?? "http://127.0.0.1:8000").replace(/\/+$/, "");
  const token = env.PORTCULLIS_TOKEN;
  const send = async (method: string, path: string, body?: unknown): Promise<Response> => {
    if (!token) throw new CliError("PORTCULLIS_TOKEN is not set: export the API key printed at first start (or another key)", 2);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json, text/plain" };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (error) {
      throw new CliError(`cannot reach the Portcullis server at ${base} (${(error as Error).cause ?? (error as Error).message}); is it running? set PORTCULLIS_URL`, 3);
    }
    if (!response.ok) {
      const text = await response.text();
      let problem: Record<string, unknown> | undefined;
      try {
        problem = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // not problem+json
      }
      const message = problem?.code ? `${String(problem.code)}: ${String(problem.detail ?? problem.title)}` : `HTTP ${response.status}: ${text.slice(0, 200)}`;
      throw new CliError(message, 1, problem);
    }
    return response;
  };
  return {
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
