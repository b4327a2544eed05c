// `portcullis sensor add|list|show|deactivate|rotate-key`: the honeypot sensor registry through its
// HTTP API. A sensor's key is printed once, by `add` and `rotate-key`; nothing else ever shows it.
import { Option, type Command } from "commander";
import { apiClient, CliError, query } from "./client.ts";
import { printJson, printRecord, printTable } from "./output.ts";

type Sensor = Record<string, unknown> & { id: string; name: string; keys: { prefix: string; status: string; expires_at: string | null }[] };
type Page<T> = { items: T[]; next_cursor: string | null };

const json = (cmd: Command) => Boolean(cmd.optsWithGlobals().json);
const COLUMNS = ["id", "name", "honeypot_type", "location", "active", "keys", "last_event_at", "created_at"];
const path = (id: string, verb = "") => `/security/honeypot/instances/${encodeURIComponent(id)}${verb ? `/${verb}` : ""}`;
const keyList = (s: Sensor) => s.keys.map((k) => `${k.prefix} ${k.status}${k.expires_at ? ` until ${k.expires_at}` : ""}`).join(", ");
const row = (s: Sensor) => ({ ...s, keys: keyList(s), metadata: JSON.stringify(s.metadata) });

const printKey = (sensor: Sensor & { api_key: string }, what: string) => {
  process.stdout.write(`${what} for sensor ${sensor.name} (${sensor.id}), shown once; it is stored only as a hash:\n\n  ${sensor.api_key}\n\n`);
  process.stdout.write("Cowrie (cowrie.cfg [output_splunk]): url = <this server>/services/collector/event, token = <the key>\n");
  process.stdout.write("OpenCanary (WebhookHandler): url = <this server>/security/honeypot/ingest/opencanary, headers {\"X-HONEYPOT-KEY\": \"<the key>\"}\n");
};

export const registerSensorCommands = (program: Command) => {
  const sensor = program.command("sensor").description("honeypot sensors: register, list, rotate keys, deactivate");
  sensor
    .command("add")
    .description("register a sensor and print its key (shown once)")
    .argument("<name>", "a unique name, e.g. ssh-dmz-1")
    .requiredOption("--type <type>", "cowrie, opencanary, or your own (lower-case letters, digits, _ . -)")
    .option("--location <text>", "where it runs", "")
    .option("--metadata <json>", "a JSON object kept with the sensor")
    .action(async (name: string, opts: { type: string; location: string; metadata?: string }, cmd: Command) => {
      let metadata: unknown;
      if (opts.metadata !== undefined) {
        try {
          metadata = JSON.parse(opts.metadata);
        } catch (error) {
          throw new CliError(`--metadata must be a JSON object (${(error as Error).message})`, 2);
        }
      }
      const created = await apiClient().request<Sensor & { api_key: string }>("POST", "/security/honeypot/instances", {
        name,
        honeypot_type: opts.type,
        ...(opts.location ? { location: opts.location } : {}),
        ...(metadata !== undefined ? { metadata } : {}),
      });
      if (json(cmd)) printJson(created);
      else printKey(created, "Key");
    });
  sensor
    .command("list")
    .description("sensors, newest first")
    .addOption(new Option("--active <bool>", "only active (true) or deactivated (false) sensors").choices(["true", "false"]))
    .option("--type <type>", "only this honeypot type")
    .option("--limit <n>", "page size", "50")
    .option("--cursor <cursor>", "next_cursor of the previous page")
    .action(async (opts: Record<string, string | undefined>, cmd: Command) => {
      const page = await apiClient().request<Page<Sensor>>(
        "GET",
        `/security/honeypot/instances${query({ active: opts.active, honeypot_type: opts.type, limit: opts.limit, cursor: opts.cursor })}`,
      );
      if (json(cmd)) printJson(page);
      else {
        printTable(page.items.map(row), COLUMNS);
        if (page.next_cursor) process.stdout.write(`more: --cursor ${page.next_cursor}\n`);
      }
    });
  sensor
    .command("show")
    .description("one sensor with its keys (prefixes and status) and last event")
    .argument("<id>")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const s = await apiClient().request<Sensor>("GET", path(id));
      if (json(cmd)) printJson(s);
      else printRecord(row(s));
    });
  sensor
    .command("deactivate")
    .description("deactivate a sensor: its keys are refused at once (its events stay)")
    .argument("<id>")
    .option("--reason <text>", "why", "")
    .action(async (id: string, opts: { reason: string }, cmd: Command) => {
      const s = await apiClient().request<Sensor>("POST", path(id, "deactivate"), { reason: opts.reason });
      if (json(cmd)) printJson(s);
      else process.stdout.write(`deactivated sensor ${s.name} (${s.id})\n`);
    });
  sensor
    .command("rotate-key")
    .description("issue a new key (shown once); the previous keys keep working for the grace period")
    .argument("<id>")
    .option("--grace <seconds>", "how long the previous keys keep working (default: sensors.keyRotationGraceSeconds)")
    .action(async (id: string, opts: { grace?: string }, cmd: Command) => {
      const body = opts.grace !== undefined ? { grace_seconds: Number(opts.grace) } : {};
      const s = await apiClient().request<Sensor & { api_key: string }>("POST", path(id, "rotate-key"), body);
      if (json(cmd)) printJson(s);
      else {
        printKey(s, "New key");
        process.stdout.write(`Keys: ${keyList(s)}\n`);
      }
    });
};
