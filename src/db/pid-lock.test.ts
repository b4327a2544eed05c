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

describe("PID lock takeover race", () => {
  it("lets exactly one of several processes take over the same stale lock", async () => {
    const { execFile } = await import("node:child_process");
    const d = mkdtempSync(join(tmpdir(), "pc-lock-race-"));
    try {
      const script = `
        import { acquirePidLock } from ${JSON.stringify(join(import.meta.dirname, "pid-lock.ts"))};
        try { const l = acquirePidLock(process.argv[1]); process.stdout.write("acquired"); setTimeout(() => l.release(), 1500); }
        catch (e) { process.stdout.write("refused"); }`;
      for (let round = 0; round < 8; round++) {
        const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
        writeFileSync(join(d, "portcullis.pid"), `${dead}\n`);
        const run = () =>
          new Promise<string>((resolve, reject) =>
            execFile(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, d], (err, stdout) => (err ? reject(err) : resolve(stdout))),
          );
        const outcomes = await Promise.all([run(), run(), run()]);
        expect(outcomes.filter((o) => o === "acquired"), `round ${round}: ${outcomes.join(",")}`).toHaveLength(1);
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }, 120_000);
});
