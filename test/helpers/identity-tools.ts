// Request helpers shared by the identity suites: calls bound to a suite's app that remember every
// credential they see, audit-log readers, and a scan of the audit log and app logs for those secrets.
import { expect } from "vitest";
import type { TestApp } from "./harness.ts";

export type Tokens = { access_token: string; refresh_token: string; session_id: string; expires_in: number; refresh_expires_in: number; password_change_required: boolean; token_type: string };
export type Leaf = { index: number; action: string; actor: { name: string }; target: { type: string; id: string } | null; before: any; after: any; details: any };

/** Request helpers bound to a suite's app; every credential they see is remembered for the leak scan. */
export const tools = (getT: () => TestApp, minimums: { leaves: number; secrets: number } = { leaves: 5, secrets: 3 }) => {
  const secrets = new Set<string>();
  const keep = (...values: (string | undefined | null)[]) => {
    for (const v of values) if (typeof v === "string" && v.length >= 8) secrets.add(v);
  };
  const call = (method: "GET" | "POST" | "DELETE", url: string, options: { body?: unknown; token?: string | null; headers?: Record<string, string>; ip?: string } = {}) => {
    const t = getT();
    if (options.token) keep(options.token);
    return t.app.inject({
      method,
      url,
      ...(options.body !== undefined ? { payload: options.body as object } : {}),
      headers: { ...(options.token === null ? {} : t.auth(options.token)), ...options.headers },
      ...(options.ip ? { remoteAddress: options.ip } : {}),
    });
  };
  const post = (url: string, body?: unknown, token?: string | null) => call("POST", url, { body, token });
  const get = (url: string, token?: string | null) => call("GET", url, { token });
  const del = (url: string, token?: string | null) => call("DELETE", url, { token });
  const createUser = async (username: string, role: string, password?: string, kind?: "human" | "service") => {
    keep(password);
    const res = await post("/users", { username, role, ...(password ? { password } : {}), ...(kind ? { kind } : {}) });
    expect(res.statusCode, res.body).toBe(201);
    keep(res.json().temporary_password);
    return res.json() as { user: { id: string; username: string }; temporary_password?: string };
  };
  const login = async (username: string, password: string, headers: Record<string, string> = {}) => {
    keep(password);
    const res = await call("POST", "/auth/login", { body: { username, password }, token: null, headers });
    if (res.statusCode === 200) keep(res.json().access_token, res.json().refresh_token);
    return res;
  };
  const loginOk = async (username: string, password: string, headers: Record<string, string> = {}): Promise<Tokens> => {
    const res = await login(username, password, headers);
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };
  const refresh = async (token: string) => {
    keep(token);
    const res = await call("POST", "/auth/refresh", { body: { refresh_token: token }, token: null });
    if (res.statusCode === 200) keep(res.json().access_token, res.json().refresh_token);
    return res;
  };
  const audit = async (action?: string): Promise<Leaf[]> => {
    const rows = await getT().db.query<{ leaf: string }>("SELECT leaf FROM audit_log ORDER BY seq");
    return rows.map((r) => JSON.parse(r.leaf) as Leaf).filter((l) => action === undefined || l.action === action);
  };
  const userRow = async (username: string) =>
    (await getT().db.query<Record<string, any>>("SELECT * FROM users WHERE lower(username) = lower($1)", [username]))[0];
  /** No remembered secret in any audit leaf or app log line. */
  const scan = async () => {
    const t = getT();
    const leaves = (await t.db.query<{ leaf: string }>("SELECT leaf FROM audit_log")).map((r) => r.leaf);
    // The scan must have something to look at, or it proves nothing.
    expect(leaves.length).toBeGreaterThan(minimums.leaves);
    expect(secrets.size).toBeGreaterThan(minimums.secrets);
    const found: string[] = [];
    for (const secret of secrets) {
      for (const leaf of leaves) if (leaf.includes(secret)) found.push(`audit: ${secret.slice(0, 12)}… in ${leaf.slice(0, 160)}`);
      for (const line of t.logs) if (line.includes(secret)) found.push(`log: ${secret.slice(0, 12)}… in ${line.slice(0, 160)}`);
    }
    expect(found).toEqual([]);
  };
  return { secrets, keep, call, post, get, del, createUser, login, loginOk, refresh, audit, userRow, scan };
};
