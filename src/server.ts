// Runs the server: open the database, migrate, build, bootstrap the first admin, listen, and shut
// down gracefully on SIGTERM/SIGINT (stop accepting, drain in-flight requests, close the database).
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import type { LoadedConfig } from "./config/index.ts";
import { openDatabase, type Database } from "./db/client.ts";
import { migrate } from "./db/migrate.ts";
import { buildApp, buildLapiApp, parseListen } from "./app/build.ts";

export type RunningServer = { app: FastifyInstance; db: Database; url: string; stop(): Promise<void> };

const banner = (url: string, token: string) =>
  [
    "",
    "================================================================",
    " Portcullis: first start. An admin was created with this API key.",
    " It is shown once and stored only as a hash. Keep it safe:",
    "",
    `   ${token}`,
    "",
    ` Try: curl -H "Authorization: Bearer ${token}" ${url}/auth/whoami`,
    ` API docs: ${url}/docs`,
    "================================================================",
    "",
  ].join("\n");

export const startServer = async (loaded: LoadedConfig): Promise<RunningServer> => {
  const { config } = loaded;
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  let app: FastifyInstance | undefined;
  let lapi: FastifyInstance | undefined;
  try {
    await migrate(db);
    const https =
      config.http.tlsCertFile && config.http.tlsKeyFile
        ? { cert: readFileSync(config.http.tlsCertFile), key: readFileSync(config.http.tlsKeyFile) }
        : undefined;
    app = await buildApp({ config, db, ...(https ? { https } : {}) });
    // Listen first: if the port is taken we stop before creating an admin whose key nobody saw.
    await app.listen({ host: config.host, port: config.port });
    // CrowdSec's Local API on its own address too, when configured (bouncers keep their api_url).
    if (config.crowdsec.listen) {
      lapi = await buildLapiApp(app, config, https ? { https } : {});
      await lapi.listen(parseListen(config.crowdsec.listen));
    }
    const credential = await app.services.identity.bootstrapAdmin(config.bootstrapAdminToken);
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : config.port;
    const host = config.host.includes(":") ? `[${config.host}]` : config.host;
    const url = `${https ? "https" : "http"}://${host}:${port}`;
    if (credential && config.bootstrapAdminToken === undefined) process.stdout.write(banner(url, credential.token));
    else if (credential) process.stdout.write("Portcullis: first start; the admin's API key is the one given in PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN.\n");
    if (lapi) process.stdout.write(`CrowdSec Local API also on ${https ? "https" : "http"}://${config.crowdsec.listen}/v1\n`);
    process.stdout.write(`Portcullis listening on ${url} (database: ${db.kind === "pglite" ? `embedded, ${config.dataDir}` : "PostgreSQL"})\n`);
    const started = app;
    const startedLapi = lapi;
    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        await startedLapi?.close();
        await started.close();
        await db.close();
      })());
    return { app: started, db, url, stop };
  } catch (error) {
    await lapi?.close().catch(() => {});
    await app?.close().catch(() => {});
    await db.close().catch(() => {});
    throw error;
  }
};

/** Installs SIGTERM/SIGINT handlers that stop the server, with a hard deadline. */
export const handleSignals = (server: RunningServer, timeoutMs: number) => {
  const onSignal = (signal: NodeJS.Signals) => {
    server.app.log.info({ signal }, "shutting down: no new connections, draining requests");
    const deadline = setTimeout(() => {
      server.app.log.error({ timeoutMs }, "shutdown deadline passed; exiting with requests still open");
      process.exit(1);
    }, timeoutMs);
    deadline.unref();
    server
      .stop()
      .then(() => {
        process.stdout.write("Portcullis stopped.\n");
        process.exit(0);
      })
      .catch((err: unknown) => {
        server.app.log.error({ err }, "error during shutdown");
        process.exit(1);
      });
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
};
