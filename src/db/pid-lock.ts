// PID lock for the embedded database: PGlite is single-process, so a second server (or CLI command)
// on the same data dir must refuse with a clear message instead of corrupting it. A lock left by a
// process that no longer exists is taken over.
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from "node:fs";
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

// Locks this process holds: a lock file naming our own PID is stale (a container restarted with the
// same PID) unless we hold it right now.
const heldHere = new Set<string>();

export const acquirePidLock = (dataDir: string, pid = process.pid): PidLock => {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, "portcullis.pid");
  if (heldHere.has(path)) throw new DataDirLockedError(dataDir, pid, path);
  // Two attempts: the second after removing a stale lock. If another process wins that race,
  // its PID is alive and we refuse below.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, `${pid}\n`);
      closeSync(fd);
      heldHere.add(path);
      return {
        path,
        release: () => {
          if (!heldHere.delete(path)) return;
          if (readPid(path) === pid) {
            try {
              unlinkSync(path);
            } catch {
              // already gone
            }
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = readPid(path);
      if (holder !== undefined && holder !== pid && isAlive(holder)) throw new DataDirLockedError(dataDir, holder, path);
      try {
        unlinkSync(path);
      } catch {
        // someone else removed it first; retry the exclusive create
      }
    }
  }
  const holder = readPid(path) ?? -1;
  throw new DataDirLockedError(dataDir, holder, path);
};
