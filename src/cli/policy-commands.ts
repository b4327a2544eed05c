// `portcullis policy show|set`, `portcullis block add|list|show|remove|check`:
// thin wrappers over the HTTP API.
import { Option, type Command } from "commander";
import { apiClient, CliError, query } from "./client.ts";
import { printJson, printRecord, printTable } from "./output.ts";

type Page<T> = { items: T[]; next_cursor: string | null };
type Block = Record<string, unknown> & { id: string };

const json = (cmd: Command) => Boolean(cmd.optsWithGlobals().json);
const BLOCK_COLUMNS = ["id", "entity_type", "value", "active", "expires_at", "created_by", "reason"];

const parseBool = (name: string) => (v: string) => {
  if (v === "true") return true;
  if (v === "false") return false;
  throw new CliError(`--${name} must be true or false`, 2);
};
const parseInt10 = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new CliError(`--${name} must be a whole number`, 2);
  return Number(v);
};

export const registerPolicyCommands = (program: Command) => {
  const policy = program.command("policy").description("the security policy");
  policy
    .command("show")
    .description("print the security policy")
    .action(async (_opts, cmd: Command) => {
      const result = await apiClient().request<Record<string, unknown>>("GET", "/security/policy/");
      if (json(cmd)) printJson(result);
      else printRecord(result);
    });
  policy
    .command("set")
    .description("change policy fields (only those given)")
    .addOption(new Option("--mode <mode>", "security mode").choices(["normal", "elevated", "lockdown"]))
    .option("--auto-elevate <bool>", "true | false", parseBool("auto-elevate"))
    .option("--auto-lockdown <bool>", "true | false", parseBool("auto-lockdown"))
    .option("--max-failed-auth <n>", "failed logins before escalation", parseInt10("max-failed-auth"))
    .option("--max-scan-events <n>", "scan events before escalation", parseInt10("max-scan-events"))
    .option("--detection-window <minutes>", "detection window in minutes", parseInt10("detection-window"))
    .option("--notes <text>", "free text")
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      const body: Record<string, unknown> = {};
      if (opts.mode !== undefined) body.default_mode = opts.mode;
      if (opts.autoElevate !== undefined) body.auto_elevate = opts.autoElevate;
      if (opts.autoLockdown !== undefined) body.auto_lockdown = opts.autoLockdown;
      if (opts.maxFailedAuth !== undefined) body.max_failed_auth = opts.maxFailedAuth;
      if (opts.maxScanEvents !== undefined) body.max_scan_events = opts.maxScanEvents;
      if (opts.detectionWindow !== undefined) body.detection_window_minutes = opts.detectionWindow;
      if (opts.notes !== undefined) body.notes = opts.notes;
      if (Object.keys(body).length === 0) throw new CliError("nothing to change: give at least one option (see --help)", 2);
      const result = await apiClient().request<Record<string, unknown>>("POST", "/security/policy/", body);
      if (json(cmd)) printJson(result);
      else printRecord(result);
    });

  const block = program.command("block").description("blocked IPs, CIDR ranges, users and API keys");
  block
    .command("add")
    .description("block an entity")
    .addOption(new Option("--type <type>", "entity type (guessed from the value for IPs and CIDRs)").choices(["ip", "cidr", "user", "api_key"]))
    .argument("<value>", "IP, CIDR, username or API key prefix")
    .option("--reason <text>", "why", "")
    .option("--expires <when>", "ISO 8601 time, or a duration from now such as 30m, 4h, 7d")
    .option("--force", "override the protected-network and CIDR guardrails (admin, audited)")
    .action(async (value: string, opts: { type?: string; reason: string; expires?: string; force?: boolean }, cmd: Command) => {
      const type = opts.type ?? (value.includes("/") ? "cidr" : /^[\d.]+$|:/.test(value) ? "ip" : undefined);
      if (!type) throw new CliError("give --type for values that are not IPs or CIDRs (user, api_key)", 2);
      const body: Record<string, unknown> = { entity_type: type, value, reason: opts.reason };
      if (opts.expires) body.expires_at = parseExpiry(opts.expires);
      if (opts.force) body.force = true;
      const result = await apiClient().request<Block>("POST", "/security/policy/blocks", body);
      if (json(cmd)) printJson(result);
      else printRecord(result);
    });
  block
    .command("list")
    .description("list blocks, newest first")
    .addOption(new Option("--type <type>", "entity type").choices(["ip", "cidr", "user", "api_key"]))
    .option("--active <bool>", "true | false")
    .option("--search <text>", "substring of the value")
    .option("--limit <n>", "page size", "50")
    .option("--cursor <cursor>", "continue after a previous page")
    .option("--all", "follow cursors to the end")
    .action(async (opts: { type?: string; active?: string; search?: string; limit: string; cursor?: string; all?: boolean }, cmd: Command) => {
      const client = apiClient();
      const items: Block[] = [];
      let cursor = opts.cursor;
      let next: string | null = null;
      do {
        const page = await client.request<Page<Block>>(
          "GET",
          `/security/policy/blocks${query({ type: opts.type, active: opts.active, q: opts.search, limit: opts.limit, cursor })}`,
        );
        items.push(...page.items);
        next = page.next_cursor;
        cursor = next ?? undefined;
      } while (opts.all && next);
      if (json(cmd)) printJson({ items, next_cursor: next });
      else {
        printTable(items, BLOCK_COLUMNS);
        if (next) process.stdout.write(`more: --cursor ${next}\n`);
      }
    });
  block
    .command("show")
    .argument("<id>", "block id")
    .description("show one block")
    .action(async (id: string, _opts, cmd: Command) => {
      const result = await apiClient().request<Block>("GET", `/security/policy/blocks/${encodeURIComponent(id)}`);
      if (json(cmd)) printJson(result);
      else printRecord(result);
    });
  block
    .command("remove")
    .argument("<id>", "block id")
    .option("--reason <text>", "why it is lifted")
    .description("deactivate a block (kept for the record)")
    .action(async (id: string, opts: { reason?: string }, cmd: Command) => {
      const result = await apiClient().request<Block>(
        "POST",
        `/security/policy/blocks/${encodeURIComponent(id)}/deactivate`,
        opts.reason ? { reason: opts.reason } : {},
      );
      if (json(cmd)) printJson(result);
      else printRecord(result);
    });
  block
    .command("check")
    .argument("<ip>", "address to check")
    .description("is this address blocked?")
    .action(async (ip: string, _opts, cmd: Command) => {
      const result = await apiClient().request<{ blocked: boolean; matches: Record<string, unknown>[] }>(
        "GET",
        `/security/policy/check${query({ ip })}`,
      );
      if (json(cmd)) printJson(result);
      else {
        process.stdout.write(result.blocked ? `${ip} is BLOCKED\n` : `${ip} is not blocked\n`);
        if (result.matches.length) printTable(result.matches, ["id", "type", "value", "expires_at", "reason"]);
      }
    });

};

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "4h" -> now + 4 hours; ISO 8601 passes through. */
export const parseExpiry = (text: string, now = Date.now()): string => {
  const m = DURATION.exec(text);
  if (m) {
    const at = now + Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    if (!Number.isFinite(at) || at > Date.UTC(9999, 0, 1)) throw new CliError(`--expires: ${text} is too far in the future (at most year 9999)`, 2);
    return new Date(at).toISOString();
  }
  if (!Number.isNaN(Date.parse(text)) && /\d{4}-\d{2}-\d{2}T/.test(text)) return text;
  throw new CliError(`--expires: "${text}" is neither an ISO 8601 time nor a duration like 30m, 4h, 7d`, 2);
};
