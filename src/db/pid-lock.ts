// PID lock for the embedded database: PGlite is single-process, so a second server (or CLI command)
// on the same data dir must refuse with a clear message instead of corrupting it. A lock left by a
// process that no longer exists is taken over; takeovers are serialised through a second exclusive
// file so two processes finding the same stale lock cannot both win.
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

export type PidLock = { readonly path: string; release(): void };

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
    readonly lockFile: string,
  ) {
    super(
      `data dir ${dataDir} is in use by process ${pid} (lock file ${lockFile}). ` +
        `The embedded database allows one process; stop that process, choose another PORTCULLIS_DATA_DIR, ` +
        `or set DATABASE_URL to use PostgreSQL for several processes.`,
    );
    this.name = "DataDirLockedError";
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user, so it is alive.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
};

const readPid = (path: string): number | undefined => {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
};

const removeQuietly = (path: string) => {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
};

/**
 * Creates `path` holding `content`, atomically: written to a private temp file first and then linked
 * into place, so no other process ever sees the lock file empty (an empty file would look stale).
 */
const tryCreate = (path: string, content: string): boolean => {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    removeQuietly(tmp);
  }
};


const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

// A takeover file older than this was left by a process that died mid-takeover.
const STALE_TAKEOVER_MS = 10_000;

// Locks this process holds: a lock file naming our own PID is stale (a container restarted with the
// same PID) unless we hold it right now.
const heldHere = new Set<string>();

export const acquirePidLock = (dataDir: string, pid = process.pid): PidLock => {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, "portcullis.pid");
  const takeover = `${path}.takeover`;
  if (heldHere.has(path)) throw new DataDirLockedError(dataDir, pid, path);
  const deadline = Date.now() + 5_000;
  for (;;) {
    if (Date.now() > deadline) throw new DataDirLockedError(dataDir, readPid(path) ?? -1, path);
    if (tryCreate(path, `${pid}\n`)) break;
    const holder = readPid(path);
    if (holder !== undefined && holder !== pid && isAlive(holder)) throw new DataDirLockedError(dataDir, holder, path);
    // The lock looks stale. Only the process holding the takeover file may remove it, and only if it
    // still names the same dead process: otherwise someone else took over first.
    if (tryCreate(takeover, `${pid}\n`)) {
      try {
        if (readPid(path) === holder) removeQuietly(path);
      } finally {
        removeQuietly(takeover);
      }
      continue;
    }
    try {
      if (Date.now() - statSync(takeover).mtimeMs > STALE_TAKEOVER_MS) removeQuietly(takeover);
    } catch {
      // the other takeover finished
    }
    sleepSync(20);
  }
  heldHere.add(path);
  return {
    path,
    release: () => {
      if (!heldHere.delete(path)) return;
      if (readPid(path) === pid) removeQuietly(path);
    },
  };
};
