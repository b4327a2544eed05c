// `portcullis audit list|export|verify|check-proof`: read the audit log through the API, export it,
// and verify it (offline, or a live server against a checkpoint the auditor kept).
import { mkdirSync, readFileSync, createWriteStream, writeFileSync } from "node:fs";
import type { Command } from "commander";
import cliProgress from "cli-progress";
import { apiClient, CliError, query } from "./client.ts";
import { printJson, printTable } from "./output.ts";
import { checkProofFile, verifyExportDir, verifyServer, VerifyFailure, VERIFY_EXIT } from "./audit-verify.ts";

type Page<T> = { items: T[]; next_cursor: string | null };
const json = (cmd: Command) => Boolean(cmd.optsWithGlobals().json);

/** A progress bar on stderr for people; nothing for scripts or pipes. */
const progress = (enabled: boolean, label: string) => {
  if (!enabled || !process.stderr.isTTY) return { update: (_d: number, _t: number) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {value}/{total}`, stream: process.stderr }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update: (done: number, total: number) => {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop: () => started && bar.stop(),
  };
};

/** Runs a verification, printing one line (or JSON) and exiting with its documented code. */
const runVerification = async (cmd: Command, work: () => Promise<Record<string, unknown>>) => {
  try {
    const result = await work().catch((error: unknown) => {
      if (error instanceof VerifyFailure || error instanceof CliError) throw error;
      throw new VerifyFailure(VERIFY_EXIT.MALFORMED, (error as Error).message);
    });
    if (result.key_pinned === false)
      process.stderr.write("warning: no --key given; the export's own public-key file was trusted, so this proves integrity, not origin\n");
    if (json(cmd)) printJson({ ok: true, ...result });
    else process.stdout.write(`ok: ${Object.entries(result).map(([k, v]) => `${k}=${String(v)}`).join(" ")}\n`);
  } catch (error) {
    if (!(error instanceof VerifyFailure)) throw error;
    if (json(cmd)) process.stdout.write(`${JSON.stringify({ ok: false, exit_code: error.exitCode, reason: error.message })}\n`);
    process.stderr.write(`verify failed: ${error.message}\n`);
    process.exitCode = error.exitCode;
  }
};

export const registerAuditCommands = (program: Command) => {
  const audit = program.command("audit").description("the audit log: list, export and verify");
  audit
    .command("list")
    .description("audit entries, oldest first")
    .option("--action <action>", "e.g. blocklist.block.created")
    .option("--limit <n>", "page size", "50")
    .option("--cursor <cursor>", "continue after a previous page")
    .action(async (opts: { action?: string; limit: string; cursor?: string }, cmd: Command) => {
      const page = await apiClient().request<Page<Record<string, unknown>>>("GET", `/audit/entries${query({ action: opts.action, limit: opts.limit, cursor: opts.cursor })}`);
      if (json(cmd)) printJson(page);
      else {
        printTable(
          page.items.map((e) => ({
            ...e,
            actor: (e.actor as { name: string }).name,
            target: e.target ? `${(e.target as { type: string }).type}:${(e.target as { id: string }).id}` : null,
          })),
          ["index", "occurred_at", "actor", "action", "target"],
        );
        if (page.next_cursor) process.stdout.write(`more: --cursor ${page.next_cursor}\n`);
      }
    });

  audit
    .command("export")
    .description("write entries.ndjson, the latest checkpoint and the public key to a directory")
    .requiredOption("--out <dir>", "directory to write")
    .action(async (opts: { out: string }, cmd: Command) => {
      const client = apiClient();
      // Sign a fresh checkpoint first when allowed, so the export covers everything up to now.
      await client.request("POST", "/audit/checkpoint").catch(() => undefined);
      const note = await client.text("/audit/checkpoint");
      const size = Number(note.split("\n")[1]);
      if (!Number.isSafeInteger(size)) throw new CliError("the server's checkpoint is malformed", 4);
      mkdirSync(opts.out, { recursive: true });
      writeFileSync(`${opts.out}/checkpoint`, note);
      writeFileSync(`${opts.out}/public-key`, await client.text("/audit/public-key"));
      const out = createWriteStream(`${opts.out}/entries.ndjson`);
      const bar = progress(!json(cmd), "export");
      // Walk by index, not by count: a missing entry must show up as a gap in the file, where
      // `audit verify` reports it, rather than be papered over by the next one.
      let next = 0;
      while (next < size) {
        const page = await client.request<Page<{ index: number }>>("GET", `/audit/entries${query({ start: next, end: size, limit: 1000 })}`);
        if (page.items.length === 0) break;
        for (const item of page.items) if (!out.write(`${JSON.stringify(item)}\n`)) await new Promise<void>((r) => out.once("drain", () => r()));
        next = page.items[page.items.length - 1]!.index + 1;
        bar.update(next, size);
      }
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      bar.stop();
      if (json(cmd)) printJson({ dir: opts.out, tree_size: size });
      else process.stdout.write(`exported ${size} entries, checkpoint and public key to ${opts.out}\n`);
    });

  audit
    .command("verify")
    .description(
      "verify an export (--dir) or a live server against a trusted checkpoint (--server, --trusted). " +
        "Exit codes: 0 ok, 1 signature invalid, 2 inconsistent with the trusted checkpoint (fork or rollback), 3 entry or root mismatch, 4 malformed input",
    )
    .option("--dir <dir>", "a directory written by `audit export`")
    .option("--key <vkey>", "the verifier key (name+keyid+base64) or a file holding it; pin it instead of trusting the export or server")
    .option("--server <url>", "a running Portcullis server (uses PORTCULLIS_TOKEN)")
    .option("--trusted <file>", "checkpoint you trust; checked for consistency, then replaced by the newer one")
    .option("--full", "with --server: also download every entry and recompute the root")
    .action(async (opts: { dir?: string; key?: string; server?: string; trusted?: string; full?: boolean }, cmd: Command) => {
      const bar = progress(!json(cmd), "verify");
      if (opts.dir) {
        await runVerification(cmd, () => verifyExportDir(opts.dir!, opts.key, bar.update));
      } else if (opts.server && opts.trusted) {
        const client = apiClient({ ...process.env, PORTCULLIS_URL: opts.server });
        await runVerification(cmd, () =>
          verifyServer(
            {
              text: (path) =>
                client.text(path).catch((e: unknown) => {
                  throw new VerifyFailure(VERIFY_EXIT.MALFORMED, `fetching ${path}: ${(e as Error).message}`);
                }),
              json: <T>(path: string) =>
                client.request<T>("GET", path).catch((e: unknown) => {
                  throw new VerifyFailure(VERIFY_EXIT.MALFORMED, `fetching ${path}: ${(e as Error).message}`);
                }),
            },
            opts.trusted!,
            { ...(opts.key ? { key: opts.key } : {}), full: Boolean(opts.full), onProgress: bar.update },
          ),
        );
      } else {
        throw new CliError("give --dir DIR, or --server URL with --trusted FILE", VERIFY_EXIT.MALFORMED);
      }
      bar.stop();
    });

  audit
    .command("check-proof")
    .description("verify RFC 9162 proofs in the JSON form of the RFC 9162 test vectors; exit 0 if all verify, 1 if any does not, 4 if malformed")
    .argument("<files...>", "proof files")
    .action(async (files: string[], _opts, cmd: Command) => {
      const results: { file: string; kind?: string; verified: boolean; error?: string }[] = [];
      let malformed = false;
      for (const file of files) {
        try {
          results.push({ file, ...checkProofFile(readFileSync(file, "utf8")) });
        } catch (error) {
          malformed = true;
          results.push({ file, verified: false, error: (error as Error).message });
        }
      }
      if (json(cmd)) printJson(results);
      else for (const r of results) process.stdout.write(`${r.verified ? "verified" : "NOT VERIFIED"}  ${r.file}${r.error ? ` (${r.error})` : ""}\n`);
      process.exitCode = malformed ? VERIFY_EXIT.MALFORMED : results.every((r) => r.verified) ? 0 : 1;
    });
};
