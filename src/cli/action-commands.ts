// `portcullis action request|list|show|dry-run|approve|reject|execute|cancel|verify`: thin wrappers
// over the action workflow's HTTP API, plus `verify`, which checks every signed verdict offline
// with the server's public key (from the server, or pinned with --key; the request from the server
// or from a file written by `action show --json`).
import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { apiClient, CliError, query } from "./client.ts";
import { printJson, printRecord, printTable } from "./output.ts";
import { verifyAction, type VerifiableAction, type VerificationResult } from "../domains/actions/signature.ts";

type Action = Record<string, unknown> & { id: string; status: string };
type Page<T> = { items: T[]; next_cursor: string | null };

const json = (cmd: Command) => Boolean(cmd.optsWithGlobals().json);
const COLUMNS = ["id", "action_type", "status", "requested_by", "approvals_count", "approvals_required", "created_at"];
const STATUSES = ["pending", "approved", "executed", "failed", "rejected", "cancelled", "expired", "dry_run_only"];

/** Exit codes of `action verify`: 0 every signature good, 1 a bad signature or payload hash, 4 unusable input. */
export const ACTION_VERIFY_EXIT = { OK: 0, INVALID: 1, MALFORMED: 4 } as const;

const summary = (a: Action) => {
  const decision = a.decision as { outcome?: string; explanation?: string } | undefined;
  return {
    id: a.id,
    action_type: a.action_type,
    status: a.status,
    risk: a.risk,
    requested_by: a.requested_by,
    reason: a.reason,
    decision: decision?.outcome,
    explanation: decision?.explanation,
    approvals: `${String(a.approvals_count)}/${String(a.approvals_required)}`,
    approved_by: a.approved_by,
    executed_by: a.executed_by,
    failure_reason: a.failure_reason,
    expires_at: a.expires_at,
  };
};

const printAction = (cmd: Command, a: Action) => {
  if (json(cmd)) printJson(a);
  else {
    printRecord(summary(a));
    const dry = a.dry_run as { at: string; report: unknown } | null | undefined;
    if (dry) process.stdout.write(`dry-run (${dry.at}):\n${JSON.stringify(dry.report, null, 2)}\n`);
  }
};

const parsePayload = (text: string): Record<string, unknown> => {
  let value: unknown;
  try {
    value = JSON.parse(text.startsWith("@") ? readFileSync(text.slice(1), "utf8") : text);
  } catch (error) {
    throw new CliError(`--payload must be a JSON object or @file (${(error as Error).message})`, 2);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new CliError("--payload must be a JSON object", 2);
  return value as Record<string, unknown>;
};

const idPath = (id: string, verb = "") => `/security/actions/${encodeURIComponent(id)}${verb ? `/${verb}` : ""}`;

export const registerActionCommands = (program: Command) => {
  const action = program.command("action").description("security action requests: request, dry-run, approve, execute, verify");
  action
    .command("request")
    .description("request an action; the policy decides at once")
    .argument("<type>", "block_entity, unblock_entity, set_mode, update_policy, deactivate_honeypot, revoke_api_key, disable_user")
    .requiredOption("--payload <json>", 'the payload as JSON (or @file), e.g. \'{"entity_type":"ip","value":"5.188.86.172"}\'')
    .option("--reason <text>", "why", "")
    .option("--no-dry-run", "do not run the dry-run at creation (high-risk types then need one before approval)")
    .action(async (type: string, opts: { payload: string; reason: string; dryRun: boolean }, cmd: Command) => {
      const body = { action_type: type, payload: parsePayload(opts.payload), reason: opts.reason, dry_run: opts.dryRun };
      printAction(cmd, await apiClient().request<Action>("POST", "/security/actions/", body));
    });
  action
    .command("list")
    .description("list requests, newest first")
    .addOption(new Option("--status <status>", "only this status").choices(STATUSES))
    .option("--type <type>", "only this action type")
    .option("--requested-by <who>", "username or principal id")
    .option("--from <time>", "created at or after (ISO 8601)")
    .option("--to <time>", "created at or before (ISO 8601)")
    .option("--limit <n>", "page size", "50")
    .option("--cursor <cursor>", "next_cursor of the previous page")
    .action(async (opts: Record<string, string | undefined>, cmd: Command) => {
      const page = await apiClient().request<Page<Action>>(
        "GET",
        `/security/actions/${query({ status: opts.status, type: opts.type, requested_by: opts.requestedBy, created_from: opts.from, created_to: opts.to, limit: opts.limit, cursor: opts.cursor })}`,
      );
      if (json(cmd)) printJson(page);
      else {
        printTable(page.items, COLUMNS);
        if (page.next_cursor) process.stdout.write(`more: --cursor ${page.next_cursor}\n`);
      }
    });
  action
    .command("show")
    .description("one request with its decision, dry-run, verdicts, result, history and webhook deliveries")
    .argument("<id>")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const a = await apiClient().request<Action>("GET", idPath(id));
      printAction(cmd, a);
      if (!json(cmd)) {
        const approvals = (a.approvals as Record<string, unknown>[]) ?? [];
        if (approvals.length)
          printTable(
            approvals.map((v) => ({ verdict: v.verdict, approver: (v.approver as { name: string }).name, signed_at: v.signed_at, note: v.note })),
            ["verdict", "approver", "signed_at", "note"],
          );
        printTable((a.history as Record<string, unknown>[]) ?? [], ["at", "event", "from", "to", "actor", "note"]);
      }
    });
  action
    .command("dry-run")
    .description("recompute the dry-run report from live data")
    .argument("<id>")
    .action(async (id: string, _opts: unknown, cmd: Command) => printAction(cmd, await apiClient().request<Action>("POST", idPath(id, "dry-run"))));
  for (const verb of ["approve", "reject"] as const)
    action
      .command(verb)
      .description(`${verb} a pending request with a note (signed by the server; never your own request)`)
      .argument("<id>")
      .option("--note <text>", "why", "")
      .action(async (id: string, opts: { note: string }, cmd: Command) => printAction(cmd, await apiClient().request<Action>("POST", idPath(id, verb), { note: opts.note })));
  action
    .command("execute")
    .description("execute an approved request (exactly once)")
    .argument("<id>")
    .action(async (id: string, _opts: unknown, cmd: Command) => printAction(cmd, await apiClient().request<Action>("POST", idPath(id, "execute"))));
  action
    .command("cancel")
    .description("cancel a pending request (its requester or an admin)")
    .argument("<id>")
    .option("--note <text>", "why", "")
    .action(async (id: string, opts: { note: string }, cmd: Command) => printAction(cmd, await apiClient().request<Action>("POST", idPath(id, "cancel"), { note: opts.note })));
  action
    .command("verify")
    .description("check every signed verdict of a request offline with the server's public key")
    .argument("<id>", "request id (ignored for the lookup when --file is given, but must match it)")
    .option("--key <vkey>", "the verifier key (name+keyid+base64, as GET /audit/public-key prints it) or @file; default: fetched from the server")
    .option("--file <path>", "the request as JSON (portcullis action show ID --json); default: fetched from the server")
    .action(async (id: string, opts: { key?: string; file?: string }, cmd: Command) => {
      let request: VerifiableAction;
      let vkey: string;
      try {
        request = opts.file
          ? (JSON.parse(readFileSync(opts.file, "utf8")) as VerifiableAction)
          : await apiClient().request<VerifiableAction>("GET", idPath(id));
        vkey = opts.key ? (opts.key.startsWith("@") ? readFileSync(opts.key.slice(1), "utf8") : opts.key) : await apiClient().text("/audit/public-key");
      } catch (error) {
        if (error instanceof CliError) throw error;
        throw new CliError(`cannot read the input: ${(error as Error).message}`, ACTION_VERIFY_EXIT.MALFORMED);
      }
      if (!request || typeof request !== "object" || request.id !== id || !Array.isArray(request.approvals))
        throw new CliError(`the request document is not action request ${id} as GET /security/actions/{id} serves it`, ACTION_VERIFY_EXIT.MALFORMED);
      let result: VerificationResult;
      try {
        result = verifyAction(request, vkey);
      } catch (error) {
        throw new CliError(`cannot verify: ${(error as Error).message}`, ACTION_VERIFY_EXIT.MALFORMED);
      }
      if (json(cmd)) printJson(result);
      else {
        process.stdout.write(`request ${result.request_id}: payload hash ${result.payload_hash_ok ? "matches" : "DOES NOT MATCH"} the payload; key ${result.key_id}\n`);
        if (result.verdicts.length) printTable(result.verdicts.map((v) => ({ ...v, valid: v.valid ? "ok" : "INVALID" })), ["verdict", "approver", "signed_at", "valid", "problem"]);
        else process.stdout.write("no signed verdicts\n");
        process.stdout.write(result.ok ? `all ${result.verdicts.length} signature(s) verified\n` : "VERIFICATION FAILED\n");
      }
      process.exitCode = result.ok ? ACTION_VERIFY_EXIT.OK : ACTION_VERIFY_EXIT.INVALID;
    });
};
