// Finding credentials inside free text (shell commands, URLs, forwarded data) and in field names,
// so adapters can move the values to `secrets` and store only redacted text. Patterns favour
// over-redaction: a false positive hides a harmless word, a miss stores an attacker's (or a
// victim's) credential in clear.
import { pathKey } from "./json-text.ts";
import { REDACTED, setOwn } from "./types.ts";

export type Found = { kind: string; value: string };

type Pattern = { kind: string; re: RegExp; group: number };

// Each pattern captures the secret in `group`; everything around it is kept. Order matters only
// for naming: a value is taken by the first pattern that matches it.
const PATTERNS: Pattern[] = [
  // scheme://user:password@host
  { kind: "url_password", re: /([a-z][a-z0-9+.-]*:\/\/[^\s:/@'"]*:)([^\s@/'"]+)(@)/gid, group: 2 },
  // curl -u user:pass, --user user:pass, -uuser:pass, --proxy-user user:pass
  { kind: "basic_auth", re: /((?:^|\s)(?:-u|--user|--proxy-user|-U)(?:\s+|=)?(['"]?)[^\s:'"]*:)([^\s'";|&]+)(\2)/gd, group: 3 },
  // --password=x, --password x, --http-passwd x, --ftp-password=x, --token x, --api-key x, --secret x
  { kind: "option", re: /((?:^|\s)--?[a-z0-9-]*(?:password|passwd|pass|pwd|token|secret|api-?key|apikey|auth)[a-z0-9-]*(?:=|\s+)(['"]?))([^\s'";|&]+)(\2)/gid, group: 3 },
  // sshpass -p secret
  { kind: "sshpass", re: /(\bsshpass\s+-p\s*(['"]?))([^\s'";|&]+)(\2)/gd, group: 3 },
  // mysql -psecret (attached: "-p secret" prompts and names a database instead)
  { kind: "mysql_password", re: /(\b(?:mysql|mysqladmin|mysqldump|mariadb)\b[^|;&\n]*?\s-p(['"]?))([^\s'";|&-][^\s'";|&]*)(\2)/gd, group: 3 },
  // Authorization: Bearer x / Basic x / Token x (headers in curl -H, wget --header, raw HTTP)
  { kind: "authorization", re: /(authorization:\s*(?:bearer|basic|token|digest|negotiate|apikey)?\s*)([^\s'"\\]+)/gid, group: 2 },
  // X-Api-Key: x, X-Auth-Token: x, Private-Token: x
  { kind: "header_token", re: /((?:x-)?(?:api-?key|auth-token|access-token|private-token|secret)\s*:\s*)([^\s'"\\]+)/gid, group: 2 },
  // echo "user:pass" | chpasswd
  { kind: "chpasswd", re: /(\becho\s+(?:-e\s+)?(['"]?)[^\s:'"|]+:)([^\s'"|]+)(\2\s*\|\s*(?:sudo\s+)?chpasswd)/gd, group: 3 },
  // echo -e "pass\npass" | passwd
  { kind: "passwd", re: /(\becho\s+(?:-e\s+)?(['"]))([^'"]+)(\2\s*\|\s*(?:sudo\s+)?passwd\b)/gd, group: 3 },
  // PASSWORD=x, MYSQL_PWD=x, AWS_SECRET_ACCESS_KEY=x, GITHUB_TOKEN=x (not --options, handled above)
  { kind: "env", re: /((?<![-\w])[A-Za-z_]*(?:PASSWORD|PASSWD|_PWD|TOKEN|SECRET|API_KEY|APIKEY|ACCESS_KEY)[A-Za-z0-9_]*=(['"]?))([^\s'";|&]+)(\2)/gid, group: 3 },
];

/**
 * `text` with every credential-looking value replaced by REDACTED, and the values found.
 * Replacement is by capture group, so the text around a value is kept as it was.
 */
// Cheap screen: a text with none of these cannot match any pattern above.
const MAYBE_SECRET = /:\/\/|(?:^|\s)-|uthoriz|key|token|secret|echo|=/i;

const NOTHING_FOUND: readonly Found[] = Object.freeze([]);

export const redactText = (text: string): { text: string; found: readonly Found[] } => {
  if (!MAYBE_SECRET.test(text)) return { text, found: NOTHING_FOUND };
  const found: Found[] = [];
  let out = text;
  for (const { kind, re, group } of PATTERNS) {
    const pieces: string[] = [];
    let copied = 0;
    for (const m of out.matchAll(re)) {
      const span = m.indices?.[group];
      const value = m[group];
      if (!span || !value || value.startsWith(REDACTED)) continue;
      found.push({ kind, value });
      pieces.push(out.slice(copied, span[0]), REDACTED);
      copied = span[1];
    }
    if (copied > 0) out = pieces.join("") + out.slice(copied);
  }
  return { text: out, found };
};

// Field names that hold a credential: compared with case, "-", "_", "." and spaces removed. Covers
// HTTP header maps too: Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key,
// X-Auth-Token, Private-Token, X-Amz-Security-Token, X-Registry-Auth ...
const SECRET_NAME = /(password|passwd|passphrase|passwort|pwd|secret|token|apikey|privatekey|accesskey|credential|clientresponse|authkey|authorization|cookie)|auth$/;
const EXACT_SECRET_NAMES = new Set(["pass", "pw", "pin"]);

// Field names repeat across events (a few dozen per sensor type): answers are cached, bounded.
const secretNameCache = new Map<string, boolean>();

export const isSecretFieldName = (name: string): boolean => {
  let answer = secretNameCache.get(name);
  if (answer === undefined) {
    const folded = name.toLowerCase().replace(/[-_.\s]/g, "");
    answer = EXACT_SECRET_NAMES.has(folded) || SECRET_NAME.test(folded);
    if (secretNameCache.size >= 10_000) secretNameCache.clear();
    secretNameCache.set(name, answer);
  }
  return answer;
};

/** A stable secrets key for a field name: "VNC Password" -> "vnc_password". */
export const secretName = (name: string): string =>
  name
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "") || "secret";

/** Adds `value` under `name`, or name.2, name.3 ... when taken by a different value. */
export const addSecret = (secrets: Record<string, string>, name: string, value: string): void => {
  if (secrets[name] === undefined || secrets[name] === value) {
    secrets[name] = value;
    return;
  }
  for (let n = 2; ; n++) {
    const candidate = `${name}.${n}`;
    if (secrets[candidate] === undefined || secrets[candidate] === value) {
      secrets[candidate] = value;
      return;
    }
  }
};

/** Secret values as text (a numeric password stays recognisable). */
export const secretText = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value) ?? String(value));

/**
 * Replaces every occurrence of the given values in `text` (longest first): used on human-readable
 * messages that echo a credential in a format we cannot parse reliably.
 */
export const scrubValues = (text: string, values: Iterable<string>): string => {
  const sorted = [...new Set(values)].filter((v) => v.length > 0).sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of sorted) if (out.includes(v)) out = out.split(v).join(REDACTED);
  return out;
};

/** A value under a secret-named key that is worth moving (a flag such as password_set: true is not a credential). */
export const isSecretValue = (v: unknown): boolean => v !== null && v !== undefined && typeof v !== "boolean";

/** Nesting deeper than this (counted from where a walk starts) refuses the item: see NestingTooDeep. */
export const MAX_NESTING = 32;

/**
 * Thrown by cleanValue past MAX_NESTING. Adapters refuse the item (EVENT_INVALID_FIELD) rather than
 * store the deeper part unexamined: no sensor we know nests that deep, and a bound keeps the walk's
 * recursion (and a hostile sender's cost) small.
 */
export class NestingTooDeep extends Error {
  /** @param field the dotted path (in the item as sent) of the walk's top-level member that nests too deep */
  constructor(readonly field: string) {
    super(`nests deeper than ${MAX_NESTING} levels`);
  }
}

/** Where one walk stands: what it found so far and the path of the value being cleaned. */
export type TreeContext = {
  secrets: Record<string, string>;
  /** Raw-text replacements keyed by pathKey (see rewriteJsonValues). */
  raw: Map<string, string>;
  /** The raw-text path of the walk's root, e.g. ["payload"] or ["event", "logdata"]. */
  rawRoot: readonly string[];
  /** Secret names start with these (already secretName'd), e.g. ["hec"]; usually []. */
  secretRoot: readonly string[];
  /** Keys from the root to the value being cleaned: pushed and popped as the walk goes. */
  path: string[];
};

const secretPath = (ctx: TreeContext, last: string): string => [...ctx.secretRoot, ...ctx.path.map(secretName), last].join(".");

/**
 * A copy of `value` in which every secret-named key, at any depth, is moved to `secrets` under its
 * dotted path (headers.authorization) and replaced by REDACTED in the raw text, and every string
 * has its embedded credentials (redactText) moved likewise. Scalars cost one typeof; only objects
 * and arrays recurse. Throws NestingTooDeep past MAX_NESTING. The one walk every adapter uses.
 */
// Module-level (not a closure per call): this runs for every nested value of every ingested event.
export function cleanValue(value: unknown, ctx: TreeContext): unknown {
  if (typeof value === "string") {
    const { text, found } = redactText(value);
    if (found.length) {
      for (const f of found) addSecret(ctx.secrets, secretPath(ctx, f.kind), f.value);
      ctx.raw.set(pathKey([...ctx.rawRoot, ...ctx.path]), text);
    }
    return text;
  }
  if (typeof value !== "object" || value === null) return value;
  if (ctx.path.length >= MAX_NESTING) throw new NestingTooDeep([...ctx.rawRoot, ...ctx.path.slice(0, 1)].join("."));
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      ctx.path.push(String(i));
      out[i] = cleanValue(value[i], ctx);
      ctx.path.pop();
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const key in value) {
    const v = (value as Record<string, unknown>)[key];
    if (isSecretFieldName(key) && isSecretValue(v)) {
      addSecret(ctx.secrets, secretPath(ctx, secretName(key)), secretText(v));
      ctx.raw.set(pathKey([...ctx.rawRoot, ...ctx.path, key]), REDACTED);
      continue;
    }
    ctx.path.push(key);
    setOwn(out, key, cleanValue(v, ctx));
    ctx.path.pop();
  }
  return out;
}

/** cleanValue for the member `key` of the walk's root (an adapter's loop over top-level fields). */
export const cleanMember = (key: string, value: unknown, ctx: TreeContext): unknown => {
  ctx.path.push(key);
  try {
    return cleanValue(value, ctx);
  } finally {
    ctx.path.length = 0;
  }
};
