// End-to-end helpers: a real server process (`npm start`) on a free port, and the `portcullis` CLI
// run as a child process with a controlled environment and stdin.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..", "..");

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });

export type ServerProc = { child: ChildProcess; url: string; output: () => string; exited: Promise<number | null> };

/** Starts `npm start` on a free port with `env` on top of ours, and waits until /readyz answers. */
export const startServer = async (env: Record<string, string>, timeoutMs = 90_000): Promise<ServerProc> => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let out = "";
  const child = spawn("npm", ["start", "--silent"], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_LOG__LEVEL: "warn", ...env, PORTCULLIS_PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const proc = { child, url, output: () => out, exited };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${out}`);
    try {
      // Ready, and done starting: the bootstrap banner is printed after listen, before this line.
      if ((await fetch(`${url}/readyz`)).ok && out.includes("listening on")) return proc;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stopServer(proc);
  throw new Error(`server not ready in time:\n${out}`);
};

/** SIGTERM to npm, which forwards it to the server; resolves with the exit code. */
export const stopServer = async (proc: ServerProc) => {
  if (proc.child.exitCode === null && proc.child.signalCode === null) process.kill(proc.child.pid!, "SIGTERM");
  return proc.exited;
};

/** The admin API key the first start prints once. */
export const bootstrapKey = (output: string): string | undefined => /^\s+(pc_[A-Za-z0-9_-]{43})$/m.exec(output)?.[1];

export type CliResult = { code: number | null; stdout: string; stderr: string };

/**
 * Runs `portcullis args...` with `env` on top of ours minus every PORTCULLIS_* variable (so a token
 * or URL in the test runner's environment cannot stand in for the one under test), feeding `input`
 * on stdin. Never throws for a non-zero exit: the result carries the code.
 */
export const runCli = (args: string[], env: Record<string, string>, input?: string): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PORTCULLIS_")));
    const child = spawn(process.execPath, [join(ROOT, "bin/portcullis.mjs"), ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += String(d)));
    child.stderr.on("data", (d) => (stderr += String(d)));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
