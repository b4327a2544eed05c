// `portcullis bouncer add|list|delete` and `portcullis watcher list|validate|delete`: the CrowdSec
// Local API's enforcement points and agents, through the admin API (enforcement:manage).
import type { Command } from "commander";
import { apiClient } from "./client.ts";
import { printJson, printRecord, printTable } from "./output.ts";

const json = (cmd: Command) => Boolean(cmd.optsWithGlobals().json);
const BOUNCER_COLUMNS = ["name", "agent_name", "agent_version", "last_pull_at", "last_address", "key_prefix", "created_at"];
const WATCHER_COLUMNS = ["machine_id", "validated", "agent_name", "agent_version", "last_heartbeat_at", "last_push_at", "registered_from", "created_at"];
const segment = (value: string) => encodeURIComponent(value);

export const registerCrowdsecCommands = (program: Command) => {
  const bouncer = program.command("bouncer").description("CrowdSec bouncers (firewall, nginx, custom ...) that enforce the blocklist");
  bouncer
    .command("add")
    .description("add a bouncer and print its API key (shown once: put it in the bouncer's api_key)")
    .argument("<name>", "a name for this enforcement point")
    .action(async (name: string, _opts, cmd: Command) => {
      const created = await apiClient().request<Record<string, unknown> & { key: string }>("POST", "/crowdsec/bouncers", { name });
      if (json(cmd)) printJson(created);
      else {
        process.stdout.write(`API key for ${name} (shown once; it is stored only as a hash):\n\n  ${created.key}\n\n`);
        process.stdout.write("Set it as api_key in the bouncer's config, with api_url pointing at this server.\n");
      }
    });
  bouncer
    .command("list")
    .description("bouncers with their agent, last pull and address")
    .action(async (_opts, cmd: Command) => {
      const list = await apiClient().request<Record<string, unknown>[]>("GET", "/crowdsec/bouncers");
      if (json(cmd)) printJson(list);
      else printTable(list, BOUNCER_COLUMNS);
    });
  bouncer
    .command("delete")
    .description("delete a bouncer; its key stops working")
    .argument("<name>", "bouncer name or id")
    .action(async (name: string, _opts, cmd: Command) => {
      const deleted = await apiClient().request<Record<string, unknown>>("DELETE", `/crowdsec/bouncers/${segment(name)}`);
      if (json(cmd)) printJson(deleted);
      else process.stdout.write(`deleted bouncer ${String(deleted.name)}\n`);
    });

  const watcher = program.command("watcher").description("CrowdSec agents (watchers) that push alerts");
  watcher
    .command("list")
    .description("watchers, validated or pending")
    .action(async (_opts, cmd: Command) => {
      const list = await apiClient().request<Record<string, unknown>[]>("GET", "/crowdsec/watchers");
      if (json(cmd)) printJson(list);
      else printTable(list, WATCHER_COLUMNS);
    });
  watcher
    .command("validate")
    .description("validate a registered watcher so it can log in")
    .argument("<machine-id>", "machine id or id")
    .action(async (machineId: string, _opts, cmd: Command) => {
      const validated = await apiClient().request<Record<string, unknown>>("POST", `/crowdsec/watchers/${segment(machineId)}/validate`, {});
      if (json(cmd)) printJson(validated);
      else printRecord(validated);
    });
  watcher
    .command("delete")
    .description("delete a watcher; its tokens stop working")
    .argument("<machine-id>", "machine id or id")
    .action(async (machineId: string, _opts, cmd: Command) => {
      const deleted = await apiClient().request<Record<string, unknown>>("DELETE", `/crowdsec/watchers/${segment(machineId)}`);
      if (json(cmd)) printJson(deleted);
      else process.stdout.write(`deleted watcher ${String(deleted.machine_id)}\n`);
    });
};
