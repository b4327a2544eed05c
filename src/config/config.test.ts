// Config loading: precedence and source tracking, file formats, env mapping, interpolation,
// prod refusals, masking in `config show`, and immutability of the result.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  CONFIG_LEAVES,
  ConfigError,
  SECRET_PATHS,
  envVarName,
  flagName,
  isLoopbackHost,
  loadConfig,
  renderConfig,
  type LoadConfigOptions,
} from "./index.ts";

const ED25519_PEM = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
const RSA_PEM = generateKeyPairSync("rsa", { modulusLength: 1024 })
  .privateKey.export({ format: "pem", type: "pkcs8" })
  .toString();
const STRONG_TOKEN = "Qx7vK2mP9wR4tY8uZ3nB6cD1fG5hJ0kLaSeVi";
const VAULT_KEY = `k1:${Buffer.alloc(32, 7).toString("base64")}`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "portcullis-config-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const write = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const load = (opts: LoadConfigOptions = {}) => loadConfig({ env: {}, cwd: dir, ...opts });

/** Runs fn, asserts it throws a ConfigError, and returns it for field/source/message checks. */
const configError = (fn: () => unknown): ConfigError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError, nothing was thrown");
};

const prodBase = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  PORTCULLIS_PROFILE: "prod",
  PORTCULLIS_SIGNING__PRIVATE_KEY: ED25519_PEM,
  PORTCULLIS_AUTH__JWT_PRIVATE_KEY: ED25519_PEM,
  PORTCULLIS_SENSORS__CREDENTIAL_KEYS: VAULT_KEY,
  ...extra,
});

describe("defaults", () => {
  it("produces the documented defaults with every leaf sourced from default", () => {
    const { config, sources } = load();
    expect(config).toEqual({
      profile: "local",
      host: "127.0.0.1",
      port: 8000,
      dataDir: join(dir, "data"),
      debug: false,
      log: { level: "info", requests: true },
      http: {
        bodyLimitBytes: 1_048_576,
        trustProxy: false,
        allowInsecureHttp: false,
        shutdownTimeoutMs: 10_000,
        corsOrigins: [],
      },
      signing: {},
      audit: { checkpointIntervalSeconds: 10 },
      auth: {
        accessTokenTtlSeconds: 900,
        refreshTokenTtlSeconds: 1_209_600,
        sessionMaxAgeSeconds: 2_592_000,
        passwordMinLength: 12,
        argon2MemoryKiB: 19_456,
        argon2Iterations: 2,
        lockoutThreshold: 5,
        lockoutBaseSeconds: 60,
        lockoutMaxSeconds: 3_600,
        apiKeyDefaultTtlDays: 90,
        oidc: { scopes: "openid profile email", usernameClaim: "preferred_username", roleClaim: "groups", roleMapping: [] },
      },
      rateLimit: {
        enabled: true,
        loginPerMinute: 10,
        authPerMinute: 30,
        managementPerMinute: 100,
        ingestPerMinute: 12_000,
        enforcementPerMinute: 1_200_000,
        authFailuresPerMinute: 60,
      },
      blocklist: { protectedNetworks: [], maxPrefixV4: 8, maxPrefixV6: 32, sweepIntervalSeconds: 30 },
      rules: { defaultOutcome: "REQUIRE_APPROVAL", defaultApprovals: 1, simulationMaxDecisions: 100_000 },
      actions: {
        ttlSeconds: 86_400,
        ttlOverrides: [],
        autoExecuteTypes: [],
        executeOnApprovalTypes: [],
        webhooks: [],
        webhookMaxAttempts: 8,
        webhookRetryBaseMs: 2_000,
        webhookTimeoutMs: 5_000,
        sweepIntervalSeconds: 30,
      },
      sensors: {
        credentials: "encrypted",
        credentialKeys: [],
        retentionDays: 90,
        retentionIntervalSeconds: 3_600,
        keyRotationGraceSeconds: 86_400,
        batchMaxEvents: 10_000,
        batchMaxBytes: 10_485_760,
        eventMaxBytes: 65_536,
        fieldMaxChars: 16_384,
      },
      crowdsec: { watcherTokenTtlSeconds: 3_600 },
      detection: {
        enabled: true,
        elevateSources: 3,
        lockdownSources: 10,
        distinctUsernames: 10,
        distinctPorts: 10,
        maxTrackedSources: 100_000,
        blockDurationSeconds: 86_400,
      },
    });
    expect(Object.keys(sources)).toEqual([...CONFIG_LEAVES.keys()]);
    expect(Object.keys(sources)).toHaveLength(83);
    for (const source of Object.values(sources)) expect(source).toEqual({ kind: "default", name: "default" });
  });

  it("resolves a relative dataDir against cwd and keeps an absolute one", () => {
    expect(load({ flags: { dataDir: "state/db" } }).config.dataDir).toBe(join(dir, "state", "db"));
    expect(load({ flags: { dataDir: "/var/lib/portcullis" } }).config.dataDir).toBe("/var/lib/portcullis");
  });
});

describe("precedence", () => {
  it("flag > env > file > default for the same key, recording each source", () => {
    const file = write("portcullis.yaml", "port: 8001\nhost: 10.1.1.1\n");
    const env = { PORTCULLIS_PORT: "8002" };

    const all = load({ configFile: file, env, flags: { port: 9000 } });
    expect(all.config.port).toBe(9000);
    expect(all.sources.port).toEqual({ kind: "flag", name: "--port" });
    expect(all.config.host).toBe("10.1.1.1");
    expect(all.sources.host).toEqual({ kind: "file", name: file });

    const noFlag = load({ configFile: file, env });
    expect(noFlag.config.port).toBe(8002);
    expect(noFlag.sources.port).toEqual({ kind: "env", name: "PORTCULLIS_PORT" });

    const fileOnly = load({ configFile: file });
    expect(fileOnly.config.port).toBe(8001);
    expect(fileOnly.sources.port).toEqual({ kind: "file", name: file });

    const none = load();
    expect(none.config.port).toBe(8000);
    expect(none.sources.port).toEqual({ kind: "default", name: "default" });
  });

  it("coerces string flags from commander and names nested flags in kebab case", () => {
    const { config, sources } = load({
      flags: { port: "9100", "log.level": "warn", "http.trustProxy": "true", dataDir: undefined },
    });
    expect(config.port).toBe(9100);
    expect(config.log.level).toBe("warn");
    expect(config.http.trustProxy).toBe(true);
    expect(sources["log.level"]).toEqual({ kind: "flag", name: "--log-level" });
    expect(sources["http.trustProxy"]).toEqual({ kind: "flag", name: "--http-trust-proxy" });
    expect(sources.dataDir).toEqual({ kind: "default", name: "default" });
  });

  it("rejects an unknown flag key", () => {
    const err = configError(() => load({ flags: { logLevel: "debug" } }));
    expect(err.field).toBe("logLevel");
    expect(err.source).toBe("flag --log-level");
    expect(err.message).toBe("invalid config: logLevel (from flag --log-level): unknown setting; did you mean log.level?");
  });
});

describe("config files", () => {
  const yamlText = [
    "host: 0.0.0.0",
    "log:",
    "  level: warn",
    "  requests: false",
    "http:",
    "  corsOrigins:",
    "    - https://a.example.com",
    "    - https://b.example.com",
    "blocklist:",
    "  maxPrefixV4: 16",
    "",
  ].join("\n");
  const jsonText = JSON.stringify({
    host: "0.0.0.0",
    log: { level: "warn", requests: false },
    http: { corsOrigins: ["https://a.example.com", "https://b.example.com"] },
    blocklist: { maxPrefixV4: 16 },
  });

  it("reads YAML (.yaml and .yml) and JSON to the same config", () => {
    const fromYaml = load({ configFile: write("c.yaml", yamlText) });
    const fromYml = load({ configFile: write("c.yml", yamlText) });
    const jsonFile = write("c.json", jsonText);
    const fromJson = load({ configFile: jsonFile });
    expect(fromYaml.config).toEqual(fromJson.config);
    expect(fromYml.config).toEqual(fromJson.config);
    expect(fromJson.config.log).toEqual({ level: "warn", requests: false });
    expect(fromJson.config.http.corsOrigins).toEqual(["https://a.example.com", "https://b.example.com"]);
    expect(fromJson.config.blocklist.maxPrefixV4).toBe(16);
    expect(fromJson.sources["blocklist.maxPrefixV4"]).toEqual({ kind: "file", name: jsonFile });
    expect(fromJson.sources["blocklist.maxPrefixV6"]).toEqual({ kind: "default", name: "default" });
  });

  it("takes the file from PORTCULLIS_CONFIG (relative to cwd), and the argument wins over it", () => {
    write("env.yaml", "port: 7001\n");
    const argFile = write("arg.yaml", "port: 7002\n");
    expect(load({ env: { PORTCULLIS_CONFIG: "env.yaml" } }).config.port).toBe(7001);
    expect(load({ env: { PORTCULLIS_CONFIG: "env.yaml" }, configFile: argFile }).config.port).toBe(7002);
  });

  it("treats an empty file and YAML blanks as unset", () => {
    expect(load({ configFile: write("empty.yaml", "") }).config.port).toBe(8000);
    const { config, sources } = load({ configFile: write("blank.yaml", "port:\nlog:\npublicUrl:\n") });
    expect(config.port).toBe(8000);
    expect(config.log.level).toBe("info");
    expect(config.publicUrl).toBeUndefined();
    expect(sources.port).toEqual({ kind: "default", name: "default" });
  });

  it("names a missing file", () => {
    const missing = join(dir, "nope.yaml");
    const err = configError(() => load({ configFile: missing }));
    expect(err.field).toBe("configFile");
    expect(err.message).toBe(`invalid config: config file ${missing} (from argument): cannot be read (no such file)`);
  });

  it("names an unparseable YAML or JSON file", () => {
    const badYaml = write("bad.yaml", "port: [1, 2\n");
    expect(configError(() => load({ configFile: badYaml })).message).toMatch(
      new RegExp(`^invalid config: config file ${badYaml} \\(from argument\\): cannot be parsed as YAML: `),
    );
    const badJson = write("bad.json", "{ port: 1 }");
    const err = configError(() => load({ env: { PORTCULLIS_CONFIG: badJson } }));
    expect(err.source).toBe("env PORTCULLIS_CONFIG");
    expect(err.message).toMatch(
      new RegExp(`^invalid config: config file ${badJson} \\(from env PORTCULLIS_CONFIG\\): cannot be parsed as JSON: `),
    );
  });

  it("rejects unsupported extensions and non-mapping documents", () => {
    const toml = write("c.toml", "port = 1\n");
    expect(configError(() => load({ configFile: toml })).message).toBe(
      `invalid config: config file ${toml} (from argument): unsupported extension ".toml"; use .json, .yaml or .yml`,
    );
    const list = write("list.yaml", "- 1\n- 2\n");
    expect(configError(() => load({ configFile: list })).message).toBe(
      `invalid config: config file ${list} (from argument): the top level must be a mapping of keys`,
    );
  });

  it("rejects an unknown nested key naming it, with a suggestion", () => {
    const file = write("typo.yaml", "http:\n  bodyLimit: 5\n");
    const err = configError(() => load({ configFile: file }));
    expect(err.field).toBe("http.bodyLimit");
    expect(err.source).toBe(`file ${file}`);
    expect(err.message).toBe(
      `invalid config: http.bodyLimit = 5 (from file ${file}): unknown key; did you mean http.bodyLimitBytes?`,
    );
  });

  it("rejects an unknown top-level key", () => {
    const file = write("typo.json", JSON.stringify({ port: 1, colour: "red" }));
    const err = configError(() => load({ configFile: file }));
    expect(err.field).toBe("colour");
    expect(err.source).toBe(`file ${file}`);
    expect(err.message).toBe(`invalid config: colour = "red" (from file ${file}): unknown key`);
  });

  it("reports a wrong type in a file with its source", () => {
    const file = write("bad-type.yaml", "log: debug\n");
    const err = configError(() => load({ configFile: file }));
    expect(err.field).toBe("log");
    expect(err.message).toBe(
      `invalid config: log = "debug" (from file ${file}): expected a mapping with keys: level, requests`,
    );
  });
});

describe("environment variables", () => {
  it("maps top-level and nested keys and coerces their types", () => {
    const env = {
      PORTCULLIS_DATA_DIR: "/srv/data",
      PORTCULLIS_LOG__LEVEL: "error",
      PORTCULLIS_LOG__REQUESTS: "0",
      PORTCULLIS_HTTP__BODY_LIMIT_BYTES: "2048",
      PORTCULLIS_HTTP__TRUST_PROXY: "TRUE",
      PORTCULLIS_HTTP__CORS_ORIGINS: "https://a.test, https://b.test,",
      PORTCULLIS_BLOCKLIST__PROTECTED_NETWORKS: "10.0.0.0/8,192.168.0.0/16",
      PORTCULLIS_BLOCKLIST__SWEEP_INTERVAL_SECONDS: "5",
      PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN: STRONG_TOKEN,
    };
    const { config, sources } = load({ env });
    expect(config.dataDir).toBe("/srv/data");
    expect(config.log).toEqual({ level: "error", requests: false });
    expect(config.http.bodyLimitBytes).toBe(2048);
    expect(config.http.trustProxy).toBe(true);
    expect(config.http.corsOrigins).toEqual(["https://a.test", "https://b.test"]);
    expect(config.blocklist.protectedNetworks).toEqual(["10.0.0.0/8", "192.168.0.0/16"]);
    expect(config.blocklist.sweepIntervalSeconds).toBe(5);
    expect(config.bootstrapAdminToken).toBe(STRONG_TOKEN);
    expect(sources["blocklist.protectedNetworks"]).toEqual({
      kind: "env",
      name: "PORTCULLIS_BLOCKLIST__PROTECTED_NETWORKS",
    });
    expect(sources.bootstrapAdminToken).toEqual({ kind: "env", name: "PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN" });
  });

  it("derives env and flag names from paths", () => {
    expect(envVarName("dataDir")).toBe("PORTCULLIS_DATA_DIR");
    expect(envVarName("http.shutdownTimeoutMs")).toBe("PORTCULLIS_HTTP__SHUTDOWN_TIMEOUT_MS");
    expect(envVarName("blocklist.maxPrefixV6")).toBe("PORTCULLIS_BLOCKLIST__MAX_PREFIX_V6");
    expect(flagName("http.tlsCertFile")).toBe("--http-tls-cert-file");
  });

  it("accepts DATABASE_URL, with PORTCULLIS_DATABASE_URL winning", () => {
    const plain = load({ env: { DATABASE_URL: "postgres://u:p@one/db" } });
    expect(plain.config.databaseUrl).toBe("postgres://u:p@one/db");
    expect(plain.sources.databaseUrl).toEqual({ kind: "env", name: "DATABASE_URL" });

    const both = load({
      env: { DATABASE_URL: "postgres://u:p@one/db", PORTCULLIS_DATABASE_URL: "postgres://u:p@two/db" },
    });
    expect(both.config.databaseUrl).toBe("postgres://u:p@two/db");
    expect(both.sources.databaseUrl).toEqual({ kind: "env", name: "PORTCULLIS_DATABASE_URL" });
  });

  it("ignores client/test variables and unknown PORTCULLIS_* variables without printing", () => {
    const log = vi.spyOn(console, "log");
    const warn = vi.spyOn(console, "warn");
    const error = vi.spyOn(console, "error");
    const stderr = vi.spyOn(process.stderr, "write");
    try {
      const { config } = load({
        env: {
          PORTCULLIS_URL: "http://127.0.0.1:9999",
          PORTCULLIS_TOKEN: "pc_some-client-token",
          PORTCULLIS_TEST_DATABASE_URL: "postgres://t:t@localhost/test",
          PORTCULLIS_SOMETHING_ELSE: "x",
          PORTCULLIS_PORT: "",
        },
      });
      expect(config).toEqual(load().config);
      expect(log).not.toHaveBeenCalled();
      expect(warn).not.toHaveBeenCalled();
      expect(error).not.toHaveBeenCalled();
      expect(stderr).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("names the env var when a value cannot be coerced", () => {
    const port = configError(() => load({ env: { PORTCULLIS_PORT: "abc" } }));
    expect(port.field).toBe("port");
    expect(port.source).toBe("env PORTCULLIS_PORT");
    expect(port.message).toBe(
      'invalid config: port = "abc" (from env PORTCULLIS_PORT): expected an integer between 0 and 65535',
    );

    const range = configError(() => load({ env: { PORTCULLIS_PORT: "70000" } }));
    expect(range.message).toBe(
      'invalid config: port = "70000" (from env PORTCULLIS_PORT): expected an integer between 0 and 65535',
    );

    const bool = configError(() => load({ env: { PORTCULLIS_HTTP__TRUST_PROXY: "yes" } }));
    expect(bool.field).toBe("http.trustProxy");
    expect(bool.source).toBe("env PORTCULLIS_HTTP__TRUST_PROXY");
    expect(bool.message).toBe(
      'invalid config: http.trustProxy = "yes" (from env PORTCULLIS_HTTP__TRUST_PROXY): ' +
        "expected true or false (env vars and flags also accept 1 or 0)",
    );

    const level = configError(() => load({ env: { PORTCULLIS_LOG__LEVEL: "loud" } }));
    expect(level.message).toBe(
      'invalid config: log.level = "loud" (from env PORTCULLIS_LOG__LEVEL): ' +
        "expected one of: fatal, error, warn, info, debug, trace, silent",
    );

    const sweep = configError(() => load({ env: { PORTCULLIS_BLOCKLIST__SWEEP_INTERVAL_SECONDS: "0" } }));
    expect(sweep.message).toBe(
      'invalid config: blocklist.sweepIntervalSeconds = "0" (from env PORTCULLIS_BLOCKLIST__SWEEP_INTERVAL_SECONDS): ' +
        "expected an integer between 1 and 86400",
    );
  });

  it("masks a secret in a validation error", () => {
    const err = configError(() => load({ env: { PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN: "short-token-123" } }));
    expect(err.field).toBe("bootstrapAdminToken");
    expect(err.message).toBe(
      'invalid config: bootstrapAdminToken = "********" (from env PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN): ' +
        "must be at least 20 characters",
    );
    expect(err.message).not.toContain("short-token-123");
  });
});

describe("interpolation", () => {
  it("replaces ${VAR} in file and env values and notes it in the source", () => {
    const file = write("c.yaml", 'host: "${BIND_HOST}"\nport: ${APP_PORT}\n');
    const { config, sources } = load({
      configFile: file,
      env: {
        BIND_HOST: "10.0.0.5",
        APP_PORT: "8123",
        DB_PASS: "s3cret",
        PORTCULLIS_DATABASE_URL: "postgres://app:${DB_PASS}@db:5432/portcullis",
        PORTCULLIS_PUBLIC_URL: "https://$${literal}.example.com",
      },
    });
    expect(config.host).toBe("10.0.0.5");
    expect(config.port).toBe(8123);
    expect(config.databaseUrl).toBe("postgres://app:s3cret@db:5432/portcullis");
    expect(config.publicUrl).toBe("https://${literal}.example.com");
    expect(sources.host).toEqual({ kind: "file", name: file, note: "via ${BIND_HOST}" });
    expect(sources.databaseUrl).toEqual({ kind: "env", name: "PORTCULLIS_DATABASE_URL", note: "via ${DB_PASS}" });
  });

  it("fails on a missing variable, naming the field and the variable", () => {
    const file = write("c.yaml", "http:\n  tlsCertFile: ${CERT_DIR}/cert.pem\n  tlsKeyFile: /k.pem\n");
    const err = configError(() => load({ configFile: file }));
    expect(err.field).toBe("http.tlsCertFile");
    expect(err.source).toBe(`file ${file}`);
    expect(err.message).toBe(
      `invalid config: http.tlsCertFile (from file ${file}): environment variable CERT_DIR is not set (referenced as \${CERT_DIR})`,
    );

    const fromEnv = configError(() => load({ env: { PORTCULLIS_HOST: "${NOPE}" } }));
    expect(fromEnv.field).toBe("host");
    expect(fromEnv.source).toBe("env PORTCULLIS_HOST");
    expect(fromEnv.message).toContain("environment variable NOPE is not set");
  });

  it("reads file: values, trimming exactly one trailing newline", () => {
    const tokenFile = write("token", `${STRONG_TOKEN}\n\n`);
    const keyFile = write("signing.pem", ED25519_PEM);
    const file = write("c.yaml", `bootstrapAdminToken: file:${tokenFile}\n`);
    const { config, sources } = load({
      configFile: file,
      env: { SECRETS: dir, PORTCULLIS_SIGNING__PRIVATE_KEY: "file:${SECRETS}/signing.pem" },
    });
    expect(config.bootstrapAdminToken).toBe(`${STRONG_TOKEN}\n`);
    expect(config.signing.privateKey).toBe(ED25519_PEM.replace(/\n$/, ""));
    expect(sources.bootstrapAdminToken).toEqual({ kind: "file", name: file, note: `via file:${tokenFile}` });
    expect(sources["signing.privateKey"]).toEqual({
      kind: "env",
      name: "PORTCULLIS_SIGNING__PRIVATE_KEY",
      note: `via \${SECRETS}, file:${keyFile}`,
    });
  });

  it("resolves a relative file: path against cwd", () => {
    write("host.txt", "10.9.8.7\n");
    expect(load({ env: { PORTCULLIS_HOST: "file:host.txt" } }).config.host).toBe("10.9.8.7");
  });

  it("fails on a missing file: target", () => {
    const missing = join(dir, "absent.pem");
    const err = configError(() => load({ env: { PORTCULLIS_SIGNING__PRIVATE_KEY: `file:${missing}` } }));
    expect(err.field).toBe("signing.privateKey");
    expect(err.source).toBe("env PORTCULLIS_SIGNING__PRIVATE_KEY");
    expect(err.message).toBe(
      `invalid config: signing.privateKey (from env PORTCULLIS_SIGNING__PRIVATE_KEY): cannot read file:${missing} (no such file)`,
    );
  });

  it("does not interpolate flags", () => {
    expect(load({ flags: { host: "${HOST}" } }).config.host).toBe("${HOST}");
  });
});

describe("profiles", () => {
  it("dev defaults log.level to debug, below the file", () => {
    const dev = load({ flags: { profile: "dev" } });
    expect(dev.config.log.level).toBe("debug");
    expect(dev.sources["log.level"]).toEqual({ kind: "profile", name: "profile:dev" });

    const file = write("c.yaml", "profile: dev\nlog:\n  level: warn\n");
    const overridden = load({ configFile: file });
    expect(overridden.config.profile).toBe("dev");
    expect(overridden.config.log.level).toBe("warn");
    expect(overridden.sources["log.level"]).toEqual({ kind: "file", name: file });
  });

  it("lets env choose the profile over the file", () => {
    const file = write("c.yaml", "profile: staging\n");
    const { config, sources } = load({ configFile: file, env: { PORTCULLIS_PROFILE: "dev" } });
    expect(config.profile).toBe("dev");
    expect(sources.profile).toEqual({ kind: "env", name: "PORTCULLIS_PROFILE" });
    expect(config.log.level).toBe("debug");
  });

  it("rejects an unknown profile", () => {
    const err = configError(() => load({ env: { PORTCULLIS_PROFILE: "production" } }));
    expect(err.field).toBe("profile");
    expect(err.source).toBe("env PORTCULLIS_PROFILE");
    expect(err.message).toBe(
      'invalid config: profile = "production" (from env PORTCULLIS_PROFILE): expected one of: local, dev, staging, prod',
    );
  });
});

describe("cross-field checks", () => {
  it("requires tlsCertFile and tlsKeyFile together in every profile", () => {
    const cert = configError(() => load({ flags: { "http.tlsCertFile": "/etc/tls/cert.pem" } }));
    expect(cert.field).toBe("http.tlsCertFile");
    expect(cert.source).toBe("flag --http-tls-cert-file");
    expect(cert.message).toBe(
      'invalid config: http.tlsCertFile = "/etc/tls/cert.pem" (from flag --http-tls-cert-file): http.tlsKeyFile must be set too',
    );
    const key = configError(() => load({ env: { PORTCULLIS_HTTP__TLS_KEY_FILE: "/etc/tls/key.pem" } }));
    expect(key.field).toBe("http.tlsKeyFile");
    expect(key.source).toBe("env PORTCULLIS_HTTP__TLS_KEY_FILE");

    const both = load({ flags: { "http.tlsCertFile": "tls/cert.pem", "http.tlsKeyFile": "tls/key.pem" } });
    expect(both.config.http.tlsCertFile).toBe(join(dir, "tls", "cert.pem"));
    expect(both.config.http.tlsKeyFile).toBe(join(dir, "tls", "key.pem"));
  });

  it("requires signing.privateKey to be an Ed25519 PEM, without echoing it", () => {
    const rsa = configError(() => load({ env: { PORTCULLIS_SIGNING__PRIVATE_KEY: RSA_PEM } }));
    expect(rsa.field).toBe("signing.privateKey");
    expect(rsa.source).toBe("env PORTCULLIS_SIGNING__PRIVATE_KEY");
    expect(rsa.message).toBe(
      'invalid config: signing.privateKey = "********" (from env PORTCULLIS_SIGNING__PRIVATE_KEY): ' +
        "expected a PEM-encoded, unencrypted Ed25519 private key (got a rsa key)",
    );
    const garbage = configError(() => load({ env: { PORTCULLIS_SIGNING__PRIVATE_KEY: "not-a-key-at-all" } }));
    expect(garbage.message).not.toContain("not-a-key-at-all");
    expect(garbage.message).toContain("expected a PEM-encoded, unencrypted Ed25519 private key");
  });
});

describe("prod refusals", () => {
  it("requires signing.privateKey (source default)", () => {
    const err = configError(() => load({ env: { PORTCULLIS_PROFILE: "prod" } }));
    expect(err.field).toBe("signing.privateKey");
    expect(err.source).toBe("default");
    expect(err.message).toBe(
      "invalid config: signing.privateKey = (unset) (from default): required in the prod profile " +
        "(set PORTCULLIS_SIGNING__PRIVATE_KEY=file:/path/to/ed25519.pem)",
    );
  });

  it("requires auth.jwtPrivateKey (no generated token key outside the local profile)", () => {
    const env = { ...prodBase() };
    delete env.PORTCULLIS_AUTH__JWT_PRIVATE_KEY;
    const err = configError(() => load({ env }));
    expect(err.field).toBe("auth.jwtPrivateKey");
    expect(err.message).toBe(
      "invalid config: auth.jwtPrivateKey = (unset) (from default): required in the prod profile " +
        "(set PORTCULLIS_AUTH__JWT_PRIVATE_KEY=file:/path/to/ed25519.pem)",
    );
  });

  it("refuses debug: true", () => {
    const err = configError(() => load({ env: prodBase({ PORTCULLIS_DEBUG: "true" }) }));
    expect(err.field).toBe("debug");
    expect(err.source).toBe("env PORTCULLIS_DEBUG");
    expect(err.message).toBe("invalid config: debug = true (from env PORTCULLIS_DEBUG): not allowed in the prod profile");
  });

  it.each(["debug", "trace"])("refuses log.level %s", (level) => {
    const file = write("c.yaml", `log:\n  level: ${level}\n`);
    const err = configError(() => load({ configFile: file, env: prodBase() }));
    expect(err.field).toBe("log.level");
    expect(err.source).toBe(`file ${file}`);
    expect(err.message).toBe(
      `invalid config: log.level = "${level}" (from file ${file}): not allowed in the prod profile; use info or warn`,
    );
  });

  it.each([
    ["changeme repeated", "changemechangemechangemechangeme", "looks like a placeholder value"],
    ["admin repeated", "adminadminadminadminadminadminadmin", "is made of well-known default words"],
    ["password words", "password-password-password-password", "is made of well-known default words"],
    ["portcullis+secret", "portcullis_secret_portcullis_secret_2024", "is made of well-known default words"],
    ["test repeated", "testtesttesttesttesttesttesttest", "is made of well-known default words"],
    ["too short", "Zk8pQ2vR7xN4mW1sT6yB3cJ9", "must be at least 32 characters"],
    ["low variety", "abababababababababababababababababab", "has too few distinct characters"],
  ])("refuses a weak bootstrapAdminToken (%s)", (_label, token, reason) => {
    const err = configError(() => load({ env: prodBase(), flags: { bootstrapAdminToken: token } }));
    expect(err.field).toBe("bootstrapAdminToken");
    expect(err.source).toBe("flag --bootstrap-admin-token");
    expect(err.message).toBe(
      `invalid config: bootstrapAdminToken = "********" (from flag --bootstrap-admin-token): ${reason} ` +
        "in the prod profile; generate one with: openssl rand -base64 32",
    );
    expect(err.message).not.toContain(token);
  });

  it("refuses plain HTTP on a non-loopback host", () => {
    const err = configError(() => load({ env: prodBase(), flags: { host: "0.0.0.0" } }));
    expect(err.field).toBe("host");
    expect(err.source).toBe("flag --host");
    expect(err.message).toMatch(
      /^invalid config: host = "0\.0\.0\.0" \(from flag --host\): plain HTTP on a non-loopback address is not allowed/,
    );
  });

  it("requires sensors.credentialKeys while captured credentials are encrypted, and masks them", () => {
    const err = configError(() => load({ env: prodBase({ PORTCULLIS_SENSORS__CREDENTIAL_KEYS: "" }) }));
    expect(err.field).toBe("sensors.credentialKeys");
    expect(err.message).toContain("required in the prod profile while sensors.credentials is encrypted");
    expect(load({ env: prodBase({ PORTCULLIS_SENSORS__CREDENTIAL_KEYS: "", PORTCULLIS_SENSORS__CREDENTIALS: "redacted" }) }).config.sensors.credentials).toBe("redacted");
    const bad = configError(() => load({ env: { PORTCULLIS_SENSORS__CREDENTIAL_KEYS: "k1:c2hvcnQ=" } }));
    expect(bad.field).toBe("sensors.credentialKeys");
    expect(bad.message).toContain("<id>:<base64 of 32 bytes>");
    expect(bad.message).not.toContain("c2hvcnQ=");
    const loaded = load({ env: { PORTCULLIS_SENSORS__CREDENTIAL_KEYS: `${VAULT_KEY},k0:${Buffer.alloc(32, 1).toString("base64")}` } });
    expect(loaded.config.sensors.credentialKeys).toHaveLength(2);
    expect(renderConfig(loaded, { json: false })).not.toContain(VAULT_KEY.slice(3));
  });

  it("does not apply prod rules to other profiles", () => {
    const { config } = load({
      env: { PORTCULLIS_PROFILE: "staging", PORTCULLIS_DEBUG: "1", PORTCULLIS_HOST: "0.0.0.0" },
      flags: { bootstrapAdminToken: "changemechangemechangeme" },
    });
    expect(config.debug).toBe(true);
    expect(config.host).toBe("0.0.0.0");
  });

  it("accepts a safe prod config behind a TLS-terminating proxy", () => {
    const keyFile = write("signing.pem", `${ED25519_PEM}`);
    const file = write(
      "prod.yaml",
      [
        "profile: prod",
        "host: 0.0.0.0",
        "publicUrl: https://portcullis.example.org",
        "http:",
        "  allowInsecureHttp: true",
        "  trustProxy: true",
        "signing:",
        `  privateKey: file:${keyFile}`,
        "auth:",
        `  jwtPrivateKey: file:${keyFile}`,
        "sensors:",
        `  credentialKeys: ["${VAULT_KEY}"]`,
        "",
      ].join("\n"),
    );
    const { config, sources } = load({ configFile: file, env: { PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN: STRONG_TOKEN } });
    expect(config.profile).toBe("prod");
    expect(config.host).toBe("0.0.0.0");
    expect(config.log.level).toBe("info");
    expect(config.signing.privateKey).toBe(ED25519_PEM.replace(/\n$/, ""));
    expect(config.bootstrapAdminToken).toBe(STRONG_TOKEN);
    expect(config.auth.jwtPrivateKey).toBe(ED25519_PEM.replace(/\n$/, ""));
    expect(sources.profile).toEqual({ kind: "file", name: file });
  });

  it("accepts a non-loopback prod host when TLS is configured", () => {
    const { config } = load({
      env: prodBase({
        PORTCULLIS_HOST: "192.0.2.10",
        PORTCULLIS_HTTP__TLS_CERT_FILE: "/etc/tls/cert.pem",
        PORTCULLIS_HTTP__TLS_KEY_FILE: "/etc/tls/key.pem",
      }),
    });
    expect(config.http.tlsCertFile).toBe("/etc/tls/cert.pem");
  });

  it("accepts a loopback prod host without TLS", () => {
    expect(load({ env: prodBase({ PORTCULLIS_HOST: "localhost" }) }).config.host).toBe("localhost");
  });
});

describe("isLoopbackHost", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.8.9.10", true],
    ["localhost", true],
    ["LOCALHOST", true],
    ["::1", true],
    ["[::1]", true],
    ["0:0:0:0:0:0:0:1", true],
    ["::ffff:127.0.0.1", true],
    ["0.0.0.0", false],
    ["::", false],
    ["10.0.0.1", false],
    ["128.0.0.1", false],
    ["127.1", false],
    ["localhost.example.com", false],
    ["example.com", false],
    ["", false],
  ])("%s -> %s", (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});

describe("renderConfig", () => {
  const secrets = {
    databaseUrl: "postgres://portcullis:hunter2-db-pass@db.internal:5432/portcullis?sslmode=require",
    redisUrl: "redis://:redis-pass-xyz@cache.internal:6379/0",
    bootstrapAdminToken: STRONG_TOKEN,
  };
  const loadWithSecrets = () =>
    load({
      env: {
        PORTCULLIS_DATABASE_URL: secrets.databaseUrl,
        PORTCULLIS_REDIS_URL: secrets.redisUrl,
        PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN: secrets.bootstrapAdminToken,
        PORTCULLIS_SIGNING__PRIVATE_KEY: ED25519_PEM,
        PORTCULLIS_PORT: "8443",
      },
    });
  const pemBody = ED25519_PEM.split("\n")[1] as string;
  const leaked = [
    "hunter2-db-pass",
    "redis-pass-xyz",
    STRONG_TOKEN,
    pemBody,
    "BEGIN PRIVATE KEY",
  ];

  it("covers every secret path", () => {
    expect([...SECRET_PATHS]).toEqual(["databaseUrl", "bootstrapAdminToken", "signing.privateKey", "redisUrl", "auth.jwtPrivateKey", "auth.oidc.clientSecret", "actions.webhookSecret", "sensors.credentialKeys"]);
  });

  it("prints aligned text lines with sources, masking secrets", () => {
    const text = renderConfig(loadWithSecrets(), { json: false });
    for (const secret of leaked) expect(text).not.toContain(secret);
    const lines = text.split("\n");
    expect(lines.at(-1)).toBe("");
    expect(lines).toHaveLength(CONFIG_LEAVES.size + 1);
    const row = (path: string) => lines.find((line) => line.startsWith(`${path} `));
    // The value column starts two spaces after the longest path.
    const valueColumn = Math.max(...[...CONFIG_LEAVES.keys()].map((k) => k.length)) + 2;
    expect(row("port")?.slice(0, valueColumn + 5)).toBe(`${"port".padEnd(valueColumn)}8443 `);
    expect(row("port")).toMatch(/^port +8443 +\(env PORTCULLIS_PORT\)$/);
    expect(row("databaseUrl")).toMatch(
      /^databaseUrl +postgres:\/\/portcullis:\*\*\*@db\.internal:5432\/portcullis\?sslmode=require +\(env PORTCULLIS_DATABASE_URL\)$/,
    );
    expect(row("redisUrl")).toMatch(/^redisUrl +redis:\/\/:\*\*\*@cache\.internal:6379\/0 +\(env PORTCULLIS_REDIS_URL\)$/);
    expect(row("bootstrapAdminToken")).toMatch(/^bootstrapAdminToken +\*{8} +\(env PORTCULLIS_BOOTSTRAP_ADMIN_TOKEN\)$/);
    expect(row("signing.privateKey")).toMatch(/^signing\.privateKey +\*{8} +\(env PORTCULLIS_SIGNING__PRIVATE_KEY\)$/);
    expect(row("publicUrl")).toMatch(/^publicUrl +\(unset\) +\(default\)$/);
    expect(row("http.corsOrigins")).toMatch(/^http\.corsOrigins +\[\] +\(default\)$/);
    // Every source column starts at the same offset.
    expect(new Set(lines.slice(0, -1).map((line) => line.lastIndexOf("  (")))).toHaveProperty("size", 1);
  });

  it("prints JSON with masked secrets, null for unset values, and described sources", () => {
    const json = renderConfig(loadWithSecrets(), { json: true });
    for (const secret of leaked) expect(json).not.toContain(secret);
    const parsed = JSON.parse(json) as { config: Record<string, unknown>; sources: Record<string, string> };
    expect(parsed.config.databaseUrl).toBe(
      "postgres://portcullis:***@db.internal:5432/portcullis?sslmode=require",
    );
    expect(parsed.config.redisUrl).toBe("redis://:***@cache.internal:6379/0");
    expect(parsed.config.bootstrapAdminToken).toBe("********");
    expect(parsed.config.signing).toEqual({ privateKey: "********" });
    expect(parsed.config.publicUrl).toBeNull();
    expect(parsed.config.port).toBe(8443);
    expect(parsed.config.log).toEqual({ level: "info", requests: true });
    expect(parsed.sources.port).toBe("env PORTCULLIS_PORT");
    expect(parsed.sources.host).toBe("default");
    expect(Object.keys(parsed.sources)).toEqual([...CONFIG_LEAVES.keys()]);
  });

  it("masks unparseable URLs whole and URL credentials in query strings", () => {
    const loaded = load({
      env: {
        PORTCULLIS_DATABASE_URL: "host=db user=app password=plain-secret-1",
        PORTCULLIS_REDIS_URL: "redis://cache:6379/0?password=query-secret-2",
      },
    });
    for (const json of [true, false]) {
      const out = renderConfig(loaded, { json });
      expect(out).not.toContain("plain-secret-1");
      expect(out).not.toContain("query-secret-2");
    }
    const parsed = JSON.parse(renderConfig(loaded, { json: true })) as { config: Record<string, unknown> };
    expect(parsed.config.databaseUrl).toBe("********");
    expect(parsed.config.redisUrl).toBe("redis://cache:6379/0?password=***");
  });

  it("shows interpolation notes in the source column", () => {
    const keyFile = write("k.pem", ED25519_PEM);
    const loaded = load({ env: { PORTCULLIS_SIGNING__PRIVATE_KEY: `file:${keyFile}` } });
    expect(renderConfig(loaded, { json: false })).toContain(
      `(env PORTCULLIS_SIGNING__PRIVATE_KEY via file:${keyFile})`,
    );
  });
});

describe("immutability", () => {
  it("deep-freezes the config and sources", () => {
    const { config, sources } = load({ env: { PORTCULLIS_HTTP__CORS_ORIGINS: "https://a.test" } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.log)).toBe(true);
    expect(Object.isFrozen(config.http.corsOrigins)).toBe(true);
    expect(Object.isFrozen(sources)).toBe(true);
    expect(Object.isFrozen(sources.port)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.log as { level: string }).level = "trace";
    }).toThrow(TypeError);
    expect(() => {
      (config.http.corsOrigins as string[]).push("https://evil.test");
    }).toThrow(TypeError);
    expect(config.port).toBe(8000);
    expect(config.log.level).toBe("info");
    expect(config.http.corsOrigins).toEqual(["https://a.test"]);
  });

  it("returns independent results for separate loads", () => {
    const a = load();
    const b = load({ flags: { port: 1234 } });
    expect(a.config.port).toBe(8000);
    expect(b.config.port).toBe(1234);
    expect(a.config.log).not.toBe(b.config.log);
  });
});

describe("auth settings", () => {
  it("refuses a JWT key that is not Ed25519, without echoing it", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const err = configError(() => load({ env: { PORTCULLIS_AUTH__JWT_PRIVATE_KEY: rsa } }));
    expect(err.field).toBe("auth.jwtPrivateKey");
    expect(err.message).toContain("expected a PEM-encoded, unencrypted Ed25519 private key (got a rsa key)");
    expect(err.message).not.toContain("PRIVATE KEY-----");
  });

  it("refuses a password minimum below 12", () => {
    const err = configError(() => load({ env: { PORTCULLIS_AUTH__PASSWORD_MIN_LENGTH: "8" } }));
    expect(err.field).toBe("auth.passwordMinLength");
  });

  it("requires a complete single sign-on configuration once one part is set", () => {
    const partial = configError(() => load({ env: { PORTCULLIS_AUTH__OIDC__ISSUER: "https://idp.example.org/realms/soc" } }));
    expect(partial.field).toBe("auth.oidc.clientId");
    const noRedirect = configError(() =>
      load({ env: { PORTCULLIS_AUTH__OIDC__ISSUER: "https://idp.example.org/realms/soc", PORTCULLIS_AUTH__OIDC__CLIENT_ID: "portcullis" } }),
    );
    expect(noRedirect.field).toBe("auth.oidc.redirectUri");
    const noRoles = configError(() =>
      load({
        env: {
          PORTCULLIS_AUTH__OIDC__ISSUER: "https://idp.example.org/realms/soc",
          PORTCULLIS_AUTH__OIDC__CLIENT_ID: "portcullis",
          PORTCULLIS_PUBLIC_URL: "https://portcullis.example.org",
        },
      }),
    );
    expect(noRoles.field).toBe("auth.oidc.roleMapping");
    const bad = configError(() => load({ env: { PORTCULLIS_AUTH__OIDC__ROLE_MAPPING: "soc-admins=root" } }));
    expect(bad.field).toBe("auth.oidc.roleMapping");
    expect(bad.message).toContain("each entry is <claim value>=<role>");
    const ok = load({
      env: {
        PORTCULLIS_AUTH__OIDC__ISSUER: "https://idp.example.org/realms/soc",
        PORTCULLIS_AUTH__OIDC__CLIENT_ID: "portcullis",
        PORTCULLIS_AUTH__OIDC__CLIENT_SECRET: "s3cr3t-value-for-client",
        PORTCULLIS_PUBLIC_URL: "https://portcullis.example.org",
        PORTCULLIS_AUTH__OIDC__ROLE_MAPPING: "soc-admins=admin,soc=analyst",
      },
    });
    expect(ok.config.auth.oidc.roleMapping).toEqual(["soc-admins=admin", "soc=analyst"]);
    expect(renderConfig(ok, { json: false })).not.toContain("s3cr3t-value-for-client");
    expect(renderConfig(ok, { json: true })).not.toContain("s3cr3t-value-for-client");
  });

  it("reads action webhooks from env (events joined by +), requires their secret and masks it", () => {
    const noSecret = configError(() => load({ env: { PORTCULLIS_ACTIONS__WEBHOOKS: "approved+executed|https://hooks.example.org/soc" } }));
    expect(noSecret.field).toBe("actions.webhookSecret");
    const bad = configError(() => load({ env: { PORTCULLIS_ACTIONS__WEBHOOKS: "https://hooks.example.org/soc" } }));
    expect(bad.field).toBe("actions.webhooks");
    expect(bad.message).toContain("each entry is <event>[+<event>...]|<http(s) url>");
    const badTtl = configError(() => load({ env: { PORTCULLIS_ACTIONS__TTL_OVERRIDES: "set_mode=5" } }));
    expect(badTtl.field).toBe("actions.ttlOverrides");
    const ok = load({
      env: {
        PORTCULLIS_ACTIONS__WEBHOOKS: "approved+executed|https://hooks.example.org/soc,*|http://10.0.0.5:9000/all",
        PORTCULLIS_ACTIONS__WEBHOOK_SECRET: "hook-secret-value-0123456789",
        PORTCULLIS_ACTIONS__TTL_OVERRIDES: "set_mode=3600",
      },
    });
    expect(ok.config.actions.webhooks).toEqual(["approved+executed|https://hooks.example.org/soc", "*|http://10.0.0.5:9000/all"]);
    expect(ok.config.actions.ttlOverrides).toEqual(["set_mode=3600"]);
    expect(renderConfig(ok, { json: true })).not.toContain("hook-secret-value-0123456789");
  });
});
