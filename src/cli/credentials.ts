// The CLI's credential store: one file of session tokens per user, keyed by server URL, kept
// private (0700 directory, 0600 file, atomic replace) and locked while a refresh rotates a token.
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
// client.ts imports this module too; CliError is only used at call time, so the cycle is harmless.
import { CliError } from "./client.ts";

export type StoredCredentials = {
  url: string;
  username: string;
  access_token: string;
  /** ISO time, from the server's expires_in measured on this machine's clock. */
  access_expires_at: string;
  refresh_token: string;
  session_id: string;
  stored_at: string;
};

type CredentialsFile = { version: 1; servers: Record<string, StoredCredentials> };

const FILE = "credentials.json";
const POSIX = process.platform !== "win32";
// A lock older than this belongs to a process that died: refreshes give up long before (see client.ts).
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 15_000;

/** $PORTCULLIS_CONFIG_DIR, else $XDG_CONFIG_HOME/portcullis, else ~/.config/portcullis. */
export const configDir = (env: NodeJS.ProcessEnv = process.env): string => {
  if (env.PORTCULLIS_CONFIG_DIR) return env.PORTCULLIS_CONFIG_DIR;
  // The XDG spec says relative values are to be ignored.
  if (env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME)) return join(env.XDG_CONFIG_HOME, "portcullis");
  return join(homedir(), ".config", "portcullis");
};

export const credentialsPath = (env: NodeJS.ProcessEnv = process.env) => join(configDir(env), FILE);

/** The key a server's credentials are stored under: scheme, host, port and path, without a trailing slash. */
export const serverKey = (url: string): string => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`PORTCULLIS_URL is not a URL: ${url}`, 2);
  }
  return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, "")}`;
};

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

/** Reads the file, or an empty store when there is none. A file others can read is fixed and reported. */
const readStore = (path: string): CredentialsFile => {
  let st;
  try {
    st = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, servers: {} };
    throw error;
  }
  // A symlink or a file someone else owns could be swapped or read by them: not ours to trust.
  if (!st.isFile()) throw new CliError(`${path} is not a regular file; remove it and log in again`, 2);
  if (POSIX) {
    if (st.uid !== process.getuid!()) throw new CliError(`${path} belongs to another user (uid ${st.uid}); remove it and log in again`, 2);
    if (st.mode & 0o077) {
      chmodSync(path, 0o600);
      process.stderr.write(
        `warning: ${path} was readable by other users (mode ${octal(st.mode)}); it is now 0600. ` +
          "The tokens in it may have been copied: `portcullis session revoke-all` ends every session\n",
      );
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new CliError(`${path} is not valid JSON; remove it and log in again`, 2);
  }
  const servers = (parsed as Partial<CredentialsFile> | null)?.servers;
  if (!servers || typeof servers !== "object") throw new CliError(`${path} is not a Portcullis credentials file; remove it and log in again`, 2);
  return { version: 1, servers };
};

/** Creates the directory private; tightens one we own that others can enter. */
const ensureDir = (dir: string) => {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!POSIX) return;
  const st = statSync(dir);
  if (st.uid === process.getuid!() && st.mode & 0o077) chmodSync(dir, 0o700);
};

/** Temp file (0600 from the first byte) + fsync + rename: a reader sees the old file or the new one, never half of one. */
const writeStore = (path: string, dir: string, store: CredentialsFile) => {
  ensureDir(dir);
  const tmp = join(dir, `.${FILE}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, `${JSON.stringify(store, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    // The umask can only remove bits, but be explicit: the mode is the point of this file.
    if (POSIX) chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (error) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw error;
  }
};

const removeFile = (path: string) => {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `fn` holding the store's lock file. Two CLI processes refreshing the same session at once
 * would present one refresh token twice, which the server treats as theft and answers by revoking
 * the session; under the lock the second one re-reads the store and finds the new pair instead.
 */
const withLock = async <T>(dir: string, fn: () => Promise<T>): Promise<T> => {
  ensureDir(dir);
  const lock = join(dir, `${FILE}.lock`);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(lock, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      try {
        if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) unlinkSync(lock);
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new CliError(`${lock} is held by another portcullis process; if none is running, remove it`, 2);
      await sleep(25 + Math.random() * 50);
    }
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      // removed as stale by someone else: nothing to release
    }
  }
};

export type CredentialStore = {
  readonly path: string;
  get(url: string): StoredCredentials | undefined;
  /**
   * Under the lock: reads the current entry, lets `fn` decide the new one (undefined deletes it,
   * the same object keeps it), writes it back if it changed, and returns `fn`'s result.
   */
  update<T>(url: string, fn: (current: StoredCredentials | undefined) => Promise<{ next: StoredCredentials | undefined; result: T }>): Promise<T>;
};

export const credentialStore = (env: NodeJS.ProcessEnv = process.env): CredentialStore => {
  const dir = configDir(env);
  const path = join(dir, FILE);
  return {
    path,
    get: (url) => readStore(path).servers[serverKey(url)],
    update: (url, fn) =>
      withLock(dir, async () => {
        const key = serverKey(url);
        const store = readStore(path);
        const current = store.servers[key];
        const { next, result } = await fn(current);
        if (next !== current) {
          if (next) store.servers[key] = next;
          else delete store.servers[key];
          // Logged out everywhere: leave no file behind rather than an empty one.
          if (Object.keys(store.servers).length === 0) removeFile(path);
          else writeStore(path, dir, store);
        }
        return result;
      }),
  };
};
