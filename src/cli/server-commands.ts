// Commands that run on this machine rather than through the API: serve, migrate, config show.
import type { Command } from "commander";
import { loadConfig, renderConfig, type LoadedConfig } from "../config/index.ts";
import { printJson } from "./output.ts";
// The server, database drivers and migrations load only inside serve and migrate: every other
// command (and --help) would otherwise pay ~1.5 s of imports it never uses.

type ConfigFlags = { config?: string; profile?: string; host?: string; port?: string; dataDir?: string; databaseUrl?: string };

const withConfigFlags = (cmd: Command) =>
  cmd
    .option("--config <file>", "config file (JSON or YAML); also PORTCULLIS_CONFIG")
    .option("--profile <profile>", "local | dev | staging | prod")
    .option("--host <host>", "address to listen on (default 127.0.0.1)")
    .option("--port <port>", "port to listen on (default 8000)")
    .option("--data-dir <dir>", "embedded database directory (default ./data)")
    .option("--database-url <url>", "PostgreSQL URL instead of the embedded database");

const configFrom = (opts: ConfigFlags): LoadedConfig => {
  const flags: Record<string, unknown> = {};
  if (opts.profile !== undefined) flags.profile = opts.profile;
  if (opts.host !== undefined) flags.host = opts.host;
  if (opts.port !== undefined) flags.port = opts.port;
  if (opts.dataDir !== undefined) flags.dataDir = opts.dataDir;
  if (opts.databaseUrl !== undefined) flags.databaseUrl = opts.databaseUrl;
  return loadConfig({ flags, env: process.env, cwd: process.cwd(), ...(opts.config ? { configFile: opts.config } : {}) });
};

export const registerServerCommands = (program: Command) => {
  withConfigFlags(program.command("serve").description("run the server (embedded database unless DATABASE_URL is set)")).action(
    async (opts: ConfigFlags) => {
      const loaded = configFrom(opts);
      const { handleSignals, startServer } = await import("../server.ts");
      const server = await startServer(loaded);
      handleSignals(server, loaded.config.http.shutdownTimeoutMs);
    },
  );

  withConfigFlags(program.command("migrate").description("apply pending database migrations and exit")).action(
    async (opts: ConfigFlags, cmd: Command) => {
      const { config } = configFrom(opts);
      const { openDatabase } = await import("../db/client.ts");
      const { migrate } = await import("../db/migrate.ts");
      const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
      try {
        const applied = await migrate(db);
        if (cmd.optsWithGlobals().json) printJson({ applied });
        else process.stdout.write(applied.length ? `applied migrations: ${applied.join(", ")}\n` : "database schema is current\n");
      } finally {
        await db.close();
      }
    },
  );

  const config = program.command("config").description("inspect configuration");
  withConfigFlags(config.command("show").description("print the effective config, each value's source, secrets masked")).action(
    async (opts: ConfigFlags, cmd: Command) => {
      process.stdout.write(renderConfig(configFrom(opts), { json: Boolean(cmd.optsWithGlobals().json) }));
    },
  );
};
