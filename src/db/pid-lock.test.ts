import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { acquirePidLock, DataDirLockedError } from "./pid-lock.ts";

describe("PID lock", () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), "pc-lock-"));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("writes our PID and removes the file on release", () => {
    const d = dir();
    const lock = acquirePidLock(d);
    expect(readFileSync(lock.path, "utf8").trim()).toBe(String(process.pid));
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
  });

  it("refuses a data dir held by a live process, naming it", () => {
    const d = dir();
    // PID 1 always exists.
    writeFileSync(join(d, "portcullis.pid"), "1\n");
    expect(() => acquirePidLock(d)).toThrow(DataDirLockedError);
    expect(() => acquirePidLock(d)).toThrow(/in use by process 1 /);
  });

  it("refuses a second lock in the same process", () => {
    const d = dir();
    const lock = acquirePidLock(d);
    expect(() => acquirePidLock(d)).toThrow(DataDirLockedError);
    lock.release();
    acquirePidLock(d).release();
  });

  it("takes over a stale lock left by a dead process", () => {
    const d = dir();
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    writeFileSync(join(d, "portcullis.pid"), `${dead}\n`);
    const lock = acquirePidLock(d);
    expect(readFileSync(lock.path, "utf8").trim()).toBe(String(process.pid));
    lock.release();
  });

  it("takes over a lock file with garbage in it", () => {
    const d = dir();
    writeFileSync(join(d, "portcullis.pid"), "not a pid");
    acquirePidLock(d).release();
  });
});
