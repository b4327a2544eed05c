// The one zod schema every configuration source is validated against, plus the
// leaf table derived from it so env names, coercion and rendering never drift from the schema.
import { z } from "zod";

export const PROFILES = ["local", "dev", "staging", "prod"] as const;
export type Profile = (typeof PROFILES)[number];

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const nonEmpty = () => z.string().min(1);

export const configSchema = z.strictObject({
  profile: z.enum(PROFILES).default("local"),
  host: nonEmpty().default("127.0.0.1"),
  // 0 lets the OS pick a free port, which parallel tests rely on.
  port: z.number().int().min(0).max(65535).default(8000),
  dataDir: nonEmpty().default("./data"),
  databaseUrl: nonEmpty().optional(),
  bootstrapAdminToken: z.string().min(20).optional(),
  publicUrl: z.url({ protocol: /^https?$/ }).optional(),
  debug: z.boolean().default(false),
  // prefault (not default) so an absent section still gets its inner defaults applied.
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS).default("info"),
      requests: z.boolean().default(true),
    })
    .prefault({}),
  http: z
    .strictObject({
      bodyLimitBytes: z.number().int().min(1).default(1_048_576),
      trustProxy: z.boolean().default(false),
      allowInsecureHttp: z.boolean().default(false),
      shutdownTimeoutMs: z.number().int().min(0).default(10_000),
      tlsCertFile: nonEmpty().optional(),
      tlsKeyFile: nonEmpty().optional(),
      corsOrigins: z.array(nonEmpty()).default([]),
    })
    .prefault({}),
  signing: z
    .strictObject({
      privateKey: nonEmpty().optional(),
    })
    .prefault({}),
  redisUrl: nonEmpty().optional(),
  audit: z
    .strictObject({
      // The transparency log's name in checkpoints and its verifier key; must never change once
      // auditors hold checkpoints. Default: derived from the signing key, so it is stable per key.
      origin: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$/, "letters, digits and . _ / : - only (no spaces or +)")
        .optional(),
      checkpointIntervalSeconds: z.number().int().min(1).max(86_400).default(10),
    })
    .prefault({}),
  auth: z
    .strictObject({
      // Ed25519 private key (PEM) that signs access tokens; every node of a cluster needs the same one.
      // In the local profile only, generated into the data dir when absent.
      jwtPrivateKey: nonEmpty().optional(),
      accessTokenTtlSeconds: z.number().int().min(30).max(86_400).default(900),
      refreshTokenTtlSeconds: z.number().int().min(60).max(90 * 86_400).default(14 * 86_400),
      // Absolute session lifetime: refreshing never extends a session past it.
      sessionMaxAgeSeconds: z.number().int().min(60).max(365 * 86_400).default(30 * 86_400),
      passwordMinLength: z.number().int().min(12).max(128).default(12),
      // OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane).
      argon2MemoryKiB: z.number().int().min(8_192).max(1_048_576).default(19_456),
      argon2Iterations: z.number().int().min(1).max(10).default(2),
      lockoutThreshold: z.number().int().min(1).max(100).default(5),
      // The first lockout lasts this long; each further failure while over the threshold doubles it.
      lockoutBaseSeconds: z.number().int().min(1).max(86_400).default(60),
      lockoutMaxSeconds: z.number().int().min(1).max(7 * 86_400).default(3_600),
      apiKeyDefaultTtlDays: z.number().int().min(1).max(3_650).default(90),
      oidc: z
        .strictObject({
          issuer: z.url({ protocol: /^https?$/ }).optional(),
          clientId: nonEmpty().optional(),
          clientSecret: nonEmpty().optional(),
          // Default: <publicUrl>/auth/oidc/callback.
          redirectUri: z.url({ protocol: /^https?$/ }).optional(),
          scopes: nonEmpty().default("openid profile email"),
          usernameClaim: nonEmpty().default("preferred_username"),
          // The claim holding group names (a string or an array of strings).
          roleClaim: nonEmpty().default("groups"),
          // "claim value=role" pairs, e.g. ["soc-admins=admin", "soc=analyst"]; the highest role wins.
          roleMapping: z.array(z.string().regex(/^[^=]+=(viewer|analyst|approver|executor|admin)$/, "each entry is <claim value>=<role>")).default([]),
          // Role for a user whose claims map to none; unset refuses the login.
          defaultRole: z.enum(["viewer", "analyst", "approver", "executor", "admin"]).optional(),
        })
        .prefault({}),
    })
    .prefault({}),
  rateLimit: z
    .strictObject({
      enabled: z.boolean().default(true),
      // Requests per minute. Login and refresh count per client address; everything else per
      // authenticated principal (or per address when anonymous).
      loginPerMinute: z.number().int().min(1).default(10),
      authPerMinute: z.number().int().min(1).default(30),
      managementPerMinute: z.number().int().min(1).default(100),
      ingestPerMinute: z.number().int().min(1).default(12_000),
      enforcementPerMinute: z.number().int().min(1).default(1_200_000),
      // Failed authentications (unknown, revoked or forged credentials) per client address, counted
      // per node before any route limit: garbage credentials never reach the limiter of a route.
      authFailuresPerMinute: z.number().int().min(1).default(60),
    })
    .prefault({}),
  blocklist: z
    .strictObject({
      protectedNetworks: z.array(nonEmpty()).default([]),
      maxPrefixV4: z.number().int().min(0).max(32).default(8),
      maxPrefixV6: z.number().int().min(0).max(128).default(32),
      // Bounded: Node timers above 2^31 ms fire immediately, which would spin the sweep.
      sweepIntervalSeconds: z.number().int().min(1).max(86_400).default(30),
    })
    .prefault({}),
  rules: z
    .strictObject({
      // The decision when no enforced rule matches (docs/rules.md); fail towards a human.
      defaultOutcome: z.enum(["ALLOW", "DRY_RUN_ONLY", "REQUIRE_APPROVAL", "DENY"]).default("REQUIRE_APPROVAL"),
      defaultApprovals: z.number().int().min(1).max(10).default(1),
      // Upper bound of recorded decisions one simulation replays (the answer says when it was cut).
      simulationMaxDecisions: z.number().int().min(1).max(10_000_000).default(100_000),
    })
    .prefault({}),
  actions: z
    .strictObject({
      // How long a pending request waits for its approvals before it expires (seconds; default 24 h).
      ttlSeconds: z.number().int().min(60).max(31_536_000).default(86_400),
      // Per action type: "<type>=<seconds>", e.g. "set_mode=3600".
      ttlOverrides: z.array(z.string().regex(/^[a-z][a-z0-9_]{0,63}=[1-9][0-9]{1,7}$/, "each entry is <action type>=<seconds> (60 or more)")).default([]),
      // Types the system executes at once when the policy decision is ALLOW.
      autoExecuteTypes: z.array(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, "an action type such as block_entity")).default([]),
      // Types the system executes right after their final approval (instead of waiting for an executor).
      executeOnApprovalTypes: z.array(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, "an action type such as block_entity")).default([]),
      // Webhooks: "<event>[+<event>...]|<url>" ("+" because env vars and flags split lists on commas);
      // events are transition names or * (see docs/actions.md).
      webhooks: z.array(z.string().regex(/^(\*|[a-z_]+)(\+(\*|[a-z_]+))*\|https?:\/\/[^\s,]+$/, "each entry is <event>[+<event>...]|<http(s) url>")).default([]),
      // The HMAC-SHA256 key of X-Portcullis-Signature-256 (required when webhooks are configured).
      webhookSecret: z.string().min(16).optional(),
      webhookMaxAttempts: z.number().int().min(1).max(50).default(8),
      // First retry after this long, doubling each time (capped at one hour).
      webhookRetryBaseMs: z.number().int().min(10).max(3_600_000).default(2_000),
      webhookTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
      sweepIntervalSeconds: z.number().int().min(1).max(86_400).default(30),
    })
    .prefault({}),
  sensors: z
    .strictObject({
      // Credentials captured by sensors (honeypot passwords, tokens in commands): sealed with
      // AES-256-GCM (encrypted), dropped (redacted), or kept in the stored raw original (plain).
      credentials: z.enum(["encrypted", "redacted", "plain"]).default("encrypted"),
      // "<id>:<base64 of 32 bytes>"; the first seals, all open (rotation: prepend a new key). In the
      // local profile only, one is generated into the data dir when none is set.
      credentialKeys: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,64}:[A-Za-z0-9+/_-]{42,44}={0,2}$/, "each entry is <id>:<base64 of 32 bytes>")).default([]),
      // Events (and their rollups) older than this are removed by the retention job, which signs a summary into the audit log first.
      retentionDays: z.number().int().min(1).max(36_500).default(90),
      retentionIntervalSeconds: z.number().int().min(60).max(86_400).default(3_600),
      // After a key rotation the previous key keeps working this long (seconds; default one day).
      keyRotationGraceSeconds: z.number().int().min(0).max(90 * 86_400).default(86_400),
      // One batch (POST /security/honeypot/events/batch, a HEC request): at most this many events and bytes.
      batchMaxEvents: z.number().int().min(1).max(100_000).default(10_000),
      batchMaxBytes: z.number().int().min(1_024).max(100 * 1_048_576).default(10 * 1_048_576),
      // One event (a single post, one batch item, one OpenCanary webhook) as received.
      eventMaxBytes: z.number().int().min(256).max(1_048_576).default(65_536),
      // Any one string inside an event's payload (a command line, a URL, a banner).
      fieldMaxChars: z.number().int().min(64).max(1_048_576).default(16_384),
    })
    .prefault({}),
  crowdsec: z
    .strictObject({
      // A second listener serving only the CrowdSec Local API (/v1), e.g. CrowdSec's own default
      // "127.0.0.1:8080", so bouncer configs change only api_key. Unset: /v1 on the main port only.
      listen: z
        .string()
        .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, "host:port, e.g. 127.0.0.1:8080 or [::1]:8080")
        .optional(),
      // Lifetime of a watcher's login token (CrowdSec's agents log in again when it ends).
      watcherTokenTtlSeconds: z.number().int().min(60).max(86_400).default(3_600),
    })
    .prefault({}),
  // Detection and auto-response (docs/detection.md). Thresholds for blocking are the security
  // policy's (max_failed_auth, max_scan_events, detection_window_minutes); these are the rest.
  detection: z
    .strictObject({
      enabled: z.boolean().default(true),
      // Distinct sources crossing a threshold within the window before the sentinel asks for
      // set_mode elevated (policy auto_elevate) / lockdown (policy auto_lockdown).
      elevateSources: z.number().int().min(1).max(100_000).default(3),
      lockdownSources: z.number().int().min(1).max(100_000).default(10),
      // Failed logins with this many distinct usernames in the window are credential stuffing.
      distinctUsernames: z.number().int().min(2).max(256).default(10),
      // This many distinct destination ports in the window is a port scan.
      distinctPorts: z.number().int().min(2).max(256).default(10),
      // Sources whose windows are kept in memory per node; the least recently active is dropped beyond it.
      maxTrackedSources: z.number().int().min(100).max(10_000_000).default(100_000),
      // How long the blocks the sentinel asks for last.
      blockDurationSeconds: z.number().int().min(60).max(31_536_000).default(86_400),
    })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;

export const SECRET_PATHS = ["databaseUrl", "bootstrapAdminToken", "signing.privateKey", "redisUrl", "auth.jwtPrivateKey", "auth.oidc.clientSecret", "actions.webhookSecret", "sensors.credentialKeys"] as const;
export type SecretPath = (typeof SECRET_PATHS)[number];

// URLs keep their host/db visible when masked; operators need those to debug connectivity.
const URL_SECRET_PATHS: ReadonlySet<string> = new Set(["databaseUrl", "redisUrl"]);

export const SECRET_MASK = "********";

export function isSecretPath(path: string): boolean {
  return (SECRET_PATHS as readonly string[]).includes(path);
}

const SENSITIVE_QUERY_PARAM = /pass|secret|token|key/i;

/** Masks a URL's password (and credential-like query params); anything unparseable is masked whole. */
export function maskUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return SECRET_MASK;
  }
  // An "@" after the authority means a password with an unencoded "/", "?" or "#" was split
  // into the path, so the parsed password would not cover all of it.
  if (!url.host || `${url.pathname}${url.search}${url.hash}`.includes("@")) return SECRET_MASK;
  if (url.password) url.password = "***";
  for (const key of [...url.searchParams.keys()]) {
    if (SENSITIVE_QUERY_PARAM.test(key)) url.searchParams.set(key, "***");
  }
  return url.toString();
}

/** The display form of a value at `path`: secrets masked, everything else unchanged. */
export function maskValue(path: string, value: unknown): unknown {
  if (value === undefined || value === null || !isSecretPath(path)) return value;
  if (URL_SECRET_PATHS.has(path) && typeof value === "string") return maskUrl(value);
  return SECRET_MASK;
}

export type LeafKind = "string" | "number" | "boolean" | "enum" | "array";

export interface Leaf {
  path: string;
  kind: LeafKind;
  /** true when the value may be absent from the parsed config. */
  optional: boolean;
  secret: boolean;
  /** Allowed values for enums. */
  options?: readonly string[];
  min?: number;
  max?: number;
}

interface Introspectable {
  def: { type: string; innerType?: Introspectable; shape?: Record<string, Introspectable> };
  options?: readonly string[];
  minValue?: number | null;
  maxValue?: number | null;
}

function collectLeaves(schema: Introspectable, prefix: string, optional: boolean, out: Map<string, Leaf>): void {
  const { def } = schema;
  if (def.type === "optional" && def.innerType) return collectLeaves(def.innerType, prefix, true, out);
  if ((def.type === "default" || def.type === "prefault") && def.innerType) {
    return collectLeaves(def.innerType, prefix, optional, out);
  }
  if (def.type === "object" && def.shape) {
    for (const [key, child] of Object.entries(def.shape)) {
      collectLeaves(child, prefix ? `${prefix}.${key}` : key, false, out);
    }
    return;
  }
  const leaf: Leaf = { path: prefix, kind: "string", optional, secret: isSecretPath(prefix) };
  switch (def.type) {
    case "string":
      break;
    case "number":
      leaf.kind = "number";
      if (typeof schema.minValue === "number") leaf.min = schema.minValue;
      if (typeof schema.maxValue === "number") leaf.max = schema.maxValue;
      break;
    case "boolean":
      leaf.kind = "boolean";
      break;
    case "enum":
      leaf.kind = "enum";
      leaf.options = schema.options ?? [];
      break;
    case "array":
      leaf.kind = "array";
      break;
    default:
      throw new Error(`config schema: unsupported type "${def.type}" at ${prefix}`);
  }
  out.set(prefix, leaf);
}

function buildLeaves(): ReadonlyMap<string, Leaf> {
  const out = new Map<string, Leaf>();
  collectLeaves(configSchema as unknown as Introspectable, "", false, out);
  return out;
}

/** Every leaf path of the schema in declaration order, e.g. "port", "log.level". */
export const CONFIG_LEAVES: ReadonlyMap<string, Leaf> = buildLeaves();

/** Non-leaf paths ("log", "http", ...) and their child keys, for unknown-key suggestions. */
export const CONFIG_SECTIONS: ReadonlyMap<string, readonly string[]> = (() => {
  const sections = new Map<string, string[]>([["", []]]);
  for (const path of CONFIG_LEAVES.keys()) {
    const parts = path.split(".");
    for (let i = 0; i < parts.length; i++) {
      const parent = parts.slice(0, i).join(".");
      const children = sections.get(parent) ?? [];
      const key = parts[i] as string;
      if (!children.includes(key)) children.push(key);
      sections.set(parent, children);
    }
  }
  return sections;
})();
