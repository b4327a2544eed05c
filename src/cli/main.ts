// The `portcullis` command: local commands (serve, migrate, config) and API-backed management
// commands. Errors print one line and set a meaningful exit code; --json is global.
import { Command, CommanderError } from "commander";
import { ConfigError } from "../config/index.ts";
import { DataDirLockedError } from "../db/pid-lock.ts";
import { CliError } from "./client.ts";
import { registerServerCommands } from "./server-commands.ts";
import { registerPolicyCommands } from "./policy-commands.ts";
import { registerAuditCommands } from "./audit-commands.ts";
import { registerIdentityCommands } from "./identity-commands.ts";
import { registerRulesCommands } from "./rules-commands.ts";
import { registerActionCommands } from "./action-commands.ts";
import { registerCrowdsecCommands } from "./crowdsec-commands.ts";
import { registerSensorCommands } from "./sensor-commands.ts";

const program = new Command("portcullis")
  .description("Portcullis: security operations control plane")
  .version("0.1.0")
  .option("--json", "machine-readable JSON output")
  // One line after a usage error, not the whole help text.
  .showHelpAfterError("(add --help for usage)")
  .exitOverride();

// `portcullis block list | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

registerServerCommands(program);
registerPolicyCommands(program);
registerAuditCommands(program);
registerIdentityCommands(program);
registerRulesCommands(program);
registerActionCommands(program);
registerCrowdsecCommands(program);
registerSensorCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  const json = process.argv.includes("--json");
  if (error instanceof CliError) {
    if (json && error.problem) process.stderr.write(`${JSON.stringify(error.problem)}\n`);
    else process.stderr.write(`error: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  if (error instanceof ConfigError || error instanceof DataDirLockedError) {
    process.stderr.write(`error: ${error.message}\n`);
    process.exit(2);
  }
  // Operating-system refusals a user can act on get one line, not a stack trace.
  const code = (error as NodeJS.ErrnoException).code;
  const OS_ERRORS: Record<string, string> = {
    EADDRINUSE: "the address is already in use (another server on that port? set PORTCULLIS_PORT)",
    EACCES: "permission denied",
    EADDRNOTAVAIL: "that address is not available on this machine (check PORTCULLIS_HOST)",
    ENOENT: "file not found",
  };
  if (code && OS_ERRORS[code]) {
    process.stderr.write(`error: ${OS_ERRORS[code]}: ${(error as Error).message}\n`);
    process.exit(2);
  }
  process.stderr.write(`error: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
