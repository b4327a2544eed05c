// `portcullis login|logout|whoami|password`, `user ...`, `key ...`, `session ...`, `admin unlock`:
// identity over the HTTP API. Passwords come from a hidden prompt or stdin, never from arguments
// (shell history, ps); secrets are printed only when the server hands out a one-time one.
import { createInterface } from "node:readline/promises";
import { Argument, Option, type Command } from "commander";
import { ROLES } from "../domains/identity/permissions.ts";
import { apiClient, CliError, query, serverUrl, toStored, type ApiClient, type TokenAnswer } from "./client.ts";
import { credentialStore } from "./credentials.ts";
import { printJson, printRecord, printTable } from "./output.ts";

type User = Record<string, unknown> & { id: string; username: string; role: string; kind: string; disabled: boolean; locked_until: string | null; must_change_password: boolean };
type Key = Record<string, unknown> & { id: string; prefix: string; name: string; role: string; permissions: string[] | null; status: string; expires_at: string | null };
type Session = Record<string, unknown> & { id: string; current: boolean };
type WhoAmI = { kind: string; id: string; username: string; role: string; user_kind: string; via: string; key_prefix: string | null; session_id: string | null; must_change_password: boolean; permissions: string[] };

const json = (cmd: Command) => Boolean(cmd.optsWithGlobals().json);
const out = (line: string) => process.stdout.write(`${line}\n`);
const warn = (line: string) => process.stderr.write(`${line}\n`);
const enc = encodeURIComponent;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// ------------------------------------------------------------------ reading secrets

/** An option that exists only to refuse a password typed as an argument, with the reason. */
const passwordArgTrap = () => new Option("--password <password>").hideHelp();
const refusePasswordArg = (flag: string) =>
  new CliError(`refusing a password given as an argument: it would be kept in shell history and visible in ps; use the prompt or ${flag}`, 2);

let stdinLines: Promise<string[]> | undefined;
/** All of stdin, split into lines (read once: `password` takes two lines from it). */
const readStdinLines = () =>
  (stdinLines ??= (async () => {
    if (process.stdin.isTTY) warn("reading from standard input; end with Ctrl-D");
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8").split(/\r?\n/);
  })());

/** The next line of stdin as a secret: only its line ending is removed (spaces are part of a password). */
let stdinCursor = 0;
const secretFromStdin = async (what: string): Promise<string> => {
  const line = (await readStdinLines())[stdinCursor++];
  if (!line) throw new CliError(`no ${what} on standard input (one per line)`, 2);
  return line;
};

const needTty = (what: string, flag: string) => {
  if (!process.stdin.isTTY) throw new CliError(`no terminal to ask for the ${what}: use ${flag}`, 2);
};

const promptLine = async (question: string): Promise<string> => {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
};

/** Reads a line from the terminal without echoing it. Ctrl-C cancels with exit code 130. */
const promptHidden = (question: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const stdin = process.stdin;
    // Echo off before the prompt shows: whatever is typed once it is visible must not be echoed.
    stdin.setRawMode(true);
    process.stderr.write(question);
    stdin.resume();
    stdin.setEncoding("utf8");
    let value = "";
    const finish = (error?: CliError) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") return finish();
        if (ch === "\u0003" || (ch === "\u0004" && value === "")) return finish(new CliError("cancelled", 130));
        if (ch === "\u007f" || ch === "\b") value = [...value].slice(0, -1).join("");
        else if (ch >= " ") value += ch;
      }
    };
    stdin.on("data", onData);
  });

const askPassword = async (question: string): Promise<string> => {
  const value = await promptHidden(question);
  if (!value) throw new CliError("no password given", 2);
  return value;
};

// ------------------------------------------------------------------ helpers

const userStatus = (u: User) =>
  u.disabled ? "disabled" : u.locked_until ? `locked until ${u.locked_until}` : u.must_change_password ? "must change password" : "active";

const printUsers = (users: User[]) =>
  printTable(
    users.map((u) => ({ ...u, status: userStatus(u) })),
    ["username", "role", "kind", "status", "auth", "last_login_at", "id"],
  );

const keyScope = (k: Key) => (k.permissions ? k.permissions.join(",") : `role:${k.role}`);

const printSessions = (sessions: Session[]) =>
  printTable(
    sessions.map((s) => ({ ...s, id: s.current ? `${s.id} (current)` : s.id })),
    ["id", "auth_method", "created_at", "last_seen_at", "expires_at", "ip", "active"],
  );

/** A key by id, or by its visible prefix (pc_XXXXXXXX): among everyone's keys when allowed, else your own. */
const resolveKeyId = async (client: ApiClient, ref: string): Promise<string> => {
  if (UUID.test(ref)) return ref;
  let prefix = ref;
  if (/^pc_/.test(ref) && ref.length > 11) {
    prefix = ref.slice(0, 11);
    warn(`warning: that is a whole API key, now in your shell history; only its prefix ${prefix} was used`);
  }
  if (!/^(pc_[A-Za-z0-9_-]{8}|sha256:[0-9a-f]{8})$/.test(prefix)) throw new CliError(`"${ref}" is neither a key id (UUID) nor a key prefix (pc_XXXXXXXX)`, 2);
  const list = await client.request<{ items: Key[] }>("GET", "/auth/keys?all=true").catch(async (error: unknown) => {
    if (error instanceof CliError && error.problem?.status === 403) return client.request<{ items: Key[] }>("GET", "/auth/keys");
    throw error;
  });
  const matches = list.items.filter((k) => k.prefix === prefix);
  if (matches.length === 0) throw new CliError(`no API key with the prefix ${prefix} that you can see`, 1);
  if (matches.length > 1) throw new CliError(`${matches.length} keys share the prefix ${prefix}: give the id (${matches.map((k) => k.id).join(", ")})`, 2);
  return matches[0]!.id;
};

const printKey = (k: Key) => printRecord({ ...k, scope: keyScope(k) });

/** Forgets the stored session for this server if it is `sessionId` (or any, when undefined). */
const forgetStoredSession = async (sessionId?: string): Promise<boolean> => {
  const base = serverUrl();
  return credentialStore().update(base, async (current) => {
    const drop = current !== undefined && (sessionId === undefined || current.session_id === sessionId);
    return { next: drop ? undefined : current, result: drop };
  });
};

// ------------------------------------------------------------------ commands

export const registerIdentityCommands = (program: Command) => {
  program
    .command("login")
    .description("log in with a username and password; the session is kept in <config dir>/credentials.json (mode 0600) and refreshed automatically")
    .option("--username <name>", "who to log in as (asked for on a terminal otherwise)")
    .option("--password-stdin", "read the password from standard input (one line) instead of prompting")
    .addOption(passwordArgTrap())
    .action(async (opts: { username?: string; passwordStdin?: boolean; password?: string }, cmd: Command) => {
      if (opts.password !== undefined) throw refusePasswordArg("--password-stdin");
      const base = serverUrl();
      let username = opts.username;
      if (!username) {
        needTty("username", "--username");
        username = await promptLine("username: ");
        if (!username) throw new CliError("no username given", 2);
      }
      let password: string;
      if (opts.passwordStdin) password = await secretFromStdin("password");
      else {
        needTty("password", "--password-stdin");
        password = await askPassword("password: ");
      }
      const sentAt = Date.now();
      const tokens = await apiClient(process.env, { anonymous: true }).request<TokenAnswer>("POST", "/auth/login", { username, password });
      // whoami is allowed even before a required password change, and gives the canonical name and role.
      const me = await apiClient({ ...process.env, PORTCULLIS_TOKEN: tokens.access_token }).request<WhoAmI>("GET", "/auth/whoami");
      const store = credentialStore();
      const previous = await store.update(base, async (current) => ({ next: toStored(base, me.username, tokens, sentAt), result: current }));
      if (previous && previous.session_id !== tokens.session_id) {
        // The session this login replaces would otherwise stay open, unreachable, until it expires.
        await apiClient(process.env, { anonymous: true })
          .request("POST", "/auth/logout", { refresh_token: previous.refresh_token })
          .catch(() => undefined);
      }
      if (process.env.PORTCULLIS_TOKEN) warn("note: PORTCULLIS_TOKEN is set and takes precedence over this login; unset it to use the stored session");
      if (json(cmd)) {
        printJson({
          url: base,
          username: me.username,
          role: me.role,
          session_id: tokens.session_id,
          password_change_required: tokens.password_change_required,
          credentials_file: store.path,
        });
        return;
      }
      out(`logged in to ${base} as ${me.username} (role ${me.role})`);
      out(`credentials stored in ${store.path} (mode 0600)`);
      if (tokens.password_change_required) out("your password must be changed before anything else is allowed: run `portcullis password`");
    });

  program
    .command("logout")
    .description("end the stored session on the server and delete it from the credentials file")
    .action(async (_opts, cmd: Command) => {
      const base = serverUrl();
      const store = credentialStore();
      const current = store.get(base);
      if (!current) {
        const note = process.env.PORTCULLIS_TOKEN ? " (PORTCULLIS_TOKEN is set: an API key has no session; unset it, or revoke the key)" : "";
        if (json(cmd)) printJson({ url: base, logged_out: false, reason: "not logged in" });
        else out(`not logged in to ${base}${note}`);
        return;
      }
      // The refresh token names the session even when the access token has expired (or was rotated by another process).
      let serverError: CliError | undefined;
      let revoked = 0;
      try {
        revoked = (await apiClient(process.env, { anonymous: true }).request<{ revoked: number }>("POST", "/auth/logout", { refresh_token: current.refresh_token })).revoked;
      } catch (error) {
        if (!(error instanceof CliError)) throw error;
        // Already gone on the server (revoked, expired, database reset): nothing left to end.
        if (error.problem?.code !== "REFRESH_TOKEN_INVALID") serverError = error;
      }
      await store.update(base, async (now) => ({ next: now && now.session_id === current.session_id ? undefined : now, result: undefined }));
      if (serverError) {
        throw new CliError(`${serverError.message} (the stored credentials were deleted, but the session may stay open on the server until it expires)`, serverError.exitCode, serverError.problem);
      }
      if (json(cmd)) printJson({ url: base, logged_out: true, username: current.username, session_revoked: revoked > 0 });
      else out(`logged out of ${base} (${current.username}); ${revoked > 0 ? "session ended on the server" : "the session had already ended"}, credentials deleted`);
    });

  program
    .command("whoami")
    .description("who the server takes you for, and with which permissions")
    .action(async (_opts, cmd: Command) => {
      const client = apiClient();
      const me = await client.request<WhoAmI>("GET", "/auth/whoami");
      const credentials = client.auth === "env" ? "PORTCULLIS_TOKEN" : credentialStore().path;
      if (json(cmd)) {
        printJson({ ...me, server: client.base, credentials });
        return;
      }
      printRecord({
        username: me.username,
        role: me.role,
        kind: me.user_kind,
        via: me.via === "api_key" ? `API key ${me.key_prefix}` : `session ${me.session_id}`,
        must_change_password: me.must_change_password,
        permissions: me.permissions.join(" "),
        server: client.base,
        credentials,
      });
    });

  program
    .command("password")
    .description("change your own password (your other sessions are ended)")
    .option("--new-password-stdin", "read the current password, then the new one, from standard input (one per line)")
    .addOption(passwordArgTrap())
    .action(async (opts: { newPasswordStdin?: boolean; password?: string }, cmd: Command) => {
      if (opts.password !== undefined) throw refusePasswordArg("--new-password-stdin");
      let current: string;
      let next: string;
      if (opts.newPasswordStdin) {
        current = await secretFromStdin("current password");
        next = await secretFromStdin("new password");
      } else {
        needTty("passwords", "--new-password-stdin");
        current = await askPassword("current password: ");
        next = await askPassword("new password: ");
        if ((await askPassword("new password again: ")) !== next) throw new CliError("the two new passwords differ; nothing changed", 2);
      }
      const result = await apiClient().request<{ changed: boolean; other_sessions_revoked: number }>("POST", "/auth/password", { current_password: current, new_password: next });
      if (json(cmd)) printJson(result);
      else out(`password changed; ${result.other_sessions_revoked} other session(s) ended`);
    });

  // ------------------------------------------------------------------ users
  const user = program.command("user").description("users and service accounts (admin)");
  const roleOption = () => new Option("--role <role>", "role").choices(ROLES);
  user
    .command("add")
    .description("create a user; without --password-stdin the server generates a temporary password, shown once")
    .argument("<username>", "letters, digits and . _ @ -")
    .addOption(roleOption().makeOptionMandatory())
    .option("--service", "a service account (API keys only, no password)")
    .option("--password-stdin", "read the initial password from standard input (one line)")
    .addOption(passwordArgTrap())
    .action(async (username: string, opts: { role: string; service?: boolean; passwordStdin?: boolean; password?: string }, cmd: Command) => {
      if (opts.password !== undefined) throw refusePasswordArg("--password-stdin");
      if (opts.service && opts.passwordStdin) throw new CliError("service accounts have no password: drop --password-stdin", 2);
      const body: Record<string, unknown> = { username, role: opts.role, kind: opts.service ? "service" : "human" };
      if (opts.passwordStdin) body.password = await secretFromStdin("password");
      const result = await apiClient().request<{ user: User; temporary_password?: string }>("POST", "/users", body);
      if (json(cmd)) {
        printJson(result);
        return;
      }
      out(`created ${result.user.kind === "service" ? "service account" : "user"} ${result.user.username} (role ${result.user.role}, id ${result.user.id})`);
      if (result.temporary_password) {
        out(`temporary password: ${result.temporary_password}`);
        warn(`warning: the temporary password is shown only now; ${result.user.username} must change it at first login`);
      }
      if (result.user.kind === "service") out(`give it a key: portcullis key create --user ${result.user.username} --name NAME`);
    });
  user
    .command("list")
    .description("all users and service accounts")
    .action(async (_opts, cmd: Command) => {
      const result = await apiClient().request<{ items: User[] }>("GET", "/users");
      if (json(cmd)) printJson(result);
      else printUsers(result.items);
    });
  user
    .command("show")
    .description("one user")
    .argument("<user>", "username or id")
    .action(async (ref: string, _opts, cmd: Command) => {
      const result = await apiClient().request<User>("GET", `/users/${enc(ref)}`);
      if (json(cmd)) printJson(result);
      else printRecord({ ...result, status: userStatus(result) });
    });
  const userChange = (name: string, description: string, path: string, done: (u: User) => string) =>
    user
      .command(name)
      .description(description)
      .argument("<user>", "username or id")
      .action(async (ref: string, _opts, cmd: Command) => {
        const result = await apiClient().request<User>("POST", `/users/${enc(ref)}/${path}`);
        if (json(cmd)) printJson(result);
        else out(done(result));
      });
  userChange("disable", "disable a user: sessions end, API keys stop working", "disable", (u) => `${u.username} is disabled (sessions ended, API keys refused)`);
  userChange("enable", "enable a disabled user", "enable", (u) => `${u.username} is enabled`);
  user
    .command("set-role")
    .description("change a user's role")
    .argument("<user>", "username or id")
    .addArgument(new Argument("<role>", "new role").choices(ROLES))
    .action(async (ref: string, role: string, _opts, cmd: Command) => {
      const result = await apiClient().request<User>("POST", `/users/${enc(ref)}/role`, { role });
      if (json(cmd)) printJson(result);
      else out(`${result.username} now has the role ${result.role}`);
    });
  user
    .command("reset-password")
    .description("set a new password (given on stdin, or generated and shown once) that must be changed at next login; ends the user's sessions")
    .argument("<user>", "username or id")
    .option("--password-stdin", "read the new password from standard input (one line)")
    .addOption(passwordArgTrap())
    .action(async (ref: string, opts: { passwordStdin?: boolean; password?: string }, cmd: Command) => {
      if (opts.password !== undefined) throw refusePasswordArg("--password-stdin");
      const body = opts.passwordStdin ? { password: await secretFromStdin("password") } : {};
      const result = await apiClient().request<{ user: User; temporary_password?: string }>("POST", `/users/${enc(ref)}/reset-password`, body);
      if (json(cmd)) {
        printJson(result);
        return;
      }
      out(`password of ${result.user.username} reset; their sessions ended, and they must change it at next login`);
      if (result.temporary_password) {
        out(`temporary password: ${result.temporary_password}`);
        warn("warning: the temporary password is shown only now");
      }
    });
  user
    .command("sessions")
    .description("a user's sessions")
    .argument("<user>", "username or id")
    .option("--include-ended", "also revoked and expired ones")
    .action(async (ref: string, opts: { includeEnded?: boolean }, cmd: Command) => {
      const result = await apiClient().request<{ items: Session[] }>("GET", `/users/${enc(ref)}/sessions${query({ include_ended: opts.includeEnded ? true : undefined })}`);
      if (json(cmd)) printJson(result);
      else printSessions(result.items);
    });

  // ------------------------------------------------------------------ API keys
  const key = program.command("key").description("API keys: yours, or anybody's (admin)");
  key
    .command("create")
    .description("create an API key; it is printed once and cannot be shown again")
    .requiredOption("--name <name>", "what it is for")
    .addOption(roleOption().conflicts("permission"))
    .option("--permission <permission>", "grant only this permission (repeat for more); never more than the owner holds", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--expires-in-days <days>", "lifetime in days (the server's default applies otherwise)")
    .option("--expires-at <time>", "ISO 8601 expiry time")
    .option("--no-expiry", "never expires")
    .option("--user <owner>", "owner other than yourself, e.g. a service account (admin)")
    .action(
      async (
        opts: { name: string; role?: string; permission: string[]; expiresInDays?: string; expiresAt?: string; expiry: boolean; user?: string },
        cmd: Command,
      ) => {
        const expiryChoices = [opts.expiresInDays !== undefined, opts.expiresAt !== undefined, !opts.expiry].filter(Boolean).length;
        if (expiryChoices > 1) throw new CliError("give at most one of --expires-in-days, --expires-at and --no-expiry", 2);
        const body: Record<string, unknown> = { name: opts.name };
        if (opts.role) body.role = opts.role;
        if (opts.permission.length) body.permissions = opts.permission;
        if (opts.expiresInDays !== undefined) {
          if (!/^\d+$/.test(opts.expiresInDays)) throw new CliError("--expires-in-days must be a whole number", 2);
          body.expires_in_days = Number(opts.expiresInDays);
        }
        if (opts.expiresAt !== undefined) {
          if (!/^\d{4}-\d{2}-\d{2}T/.test(opts.expiresAt) || Number.isNaN(Date.parse(opts.expiresAt)))
            throw new CliError(`--expires-at: "${opts.expiresAt}" is not an ISO 8601 time such as 2027-01-31T00:00:00Z`, 2);
          body.expires_at = opts.expiresAt;
        }
        if (!opts.expiry) body.expires_at = null;
        if (opts.user) body.user = opts.user;
        const created = await apiClient().request<Key & { key: string }>("POST", "/auth/keys", body);
        if (json(cmd)) printJson(created);
        else {
          out(`created API key ${created.prefix} "${created.name}" (id ${created.id}, ${keyScope(created)}, expires ${created.expires_at ?? "never"})`);
          out(created.key);
        }
        warn(`warning: the key is shown only now; store it safely (it cannot be recovered, only revoked: portcullis key revoke ${created.id})`);
      },
    );
  key
    .command("list")
    .description("your API keys (or a user's with --user, or everyone's with --all: admin); never the keys themselves")
    .option("--user <user>", "a user's keys")
    .option("--all", "everyone's keys")
    .action(async (opts: { user?: string; all?: boolean }, cmd: Command) => {
      if (opts.user && opts.all) throw new CliError("give --user or --all, not both", 2);
      const result = await apiClient().request<{ items: Key[] }>("GET", `/auth/keys${query({ user: opts.user, all: opts.all ? true : undefined })}`);
      if (json(cmd)) printJson(result);
      else printTable(result.items.map((k) => ({ ...k, scope: keyScope(k) })), ["id", "prefix", "name", "owner", "scope", "status", "expires_at", "last_used_at"]);
    });
  key
    .command("show")
    .description("one API key")
    .argument("<key>", "key id or prefix (pc_XXXXXXXX)")
    .action(async (ref: string, _opts, cmd: Command) => {
      const client = apiClient();
      const result = await client.request<Key>("GET", `/auth/keys/${enc(await resolveKeyId(client, ref))}`);
      if (json(cmd)) printJson(result);
      else printKey(result);
    });
  key
    .command("revoke")
    .description("revoke an API key (at once, on every node)")
    .argument("<key>", "key id or prefix (pc_XXXXXXXX)")
    .action(async (ref: string, _opts, cmd: Command) => {
      const client = apiClient();
      const result = await client.request<Key>("POST", `/auth/keys/${enc(await resolveKeyId(client, ref))}/revoke`);
      if (json(cmd)) printJson(result);
      else out(`revoked API key ${result.prefix} "${result.name}" (id ${result.id})`);
    });

  // ------------------------------------------------------------------ sessions
  const session = program.command("session").description("your login sessions");
  session
    .command("list")
    .description("your open sessions")
    .option("--include-ended", "also revoked and expired ones")
    .action(async (opts: { includeEnded?: boolean }, cmd: Command) => {
      const result = await apiClient().request<{ items: Session[] }>("GET", `/auth/sessions${query({ include_ended: opts.includeEnded ? true : undefined })}`);
      if (json(cmd)) printJson(result);
      else printSessions(result.items);
    });
  session
    .command("revoke")
    .description("end one of your sessions (an admin may end anybody's)")
    .argument("<id>", "session id")
    .action(async (id: string, _opts, cmd: Command) => {
      const client = apiClient();
      const result = await client.request<{ revoked: number }>("DELETE", `/auth/sessions/${enc(id)}`);
      // Ending the session this CLI is logged in with: its stored tokens are dead weight now.
      const forgot = client.auth === "stored" && (await forgetStoredSession(id));
      if (json(cmd)) printJson({ ...result, logged_out: forgot });
      else out(`${result.revoked ? `session ${id} ended` : `session ${id} had already ended`}${forgot ? "; it was this login, so you are logged out" : ""}`);
    });
  session
    .command("revoke-all")
    .description("end all your sessions")
    .option("--keep-current", "keep the session this command runs in")
    .action(async (opts: { keepCurrent?: boolean }, cmd: Command) => {
      const client = apiClient();
      const result = await client.request<{ revoked: number }>("POST", "/auth/sessions/revoke-all", { except_current: Boolean(opts.keepCurrent) });
      const forgot = client.auth === "stored" && !opts.keepCurrent && (await forgetStoredSession());
      if (json(cmd)) printJson({ ...result, logged_out: forgot });
      else out(`${result.revoked} session(s) ended${forgot ? "; you are logged out" : ""}`);
    });

  // ------------------------------------------------------------------ admin
  const admin = program.command("admin").description("administrative actions");
  admin
    .command("unlock")
    .description("lift a login lockout after repeated failed logins")
    .argument("<user>", "username or id")
    .action(async (ref: string, _opts, cmd: Command) => {
      const result = await apiClient().request<User>("POST", `/users/${enc(ref)}/unlock`);
      if (json(cmd)) printJson(result);
      else out(`${result.username} is unlocked (failed logins reset)`);
    });
};
