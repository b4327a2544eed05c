// Password rules and hashing: argon2id (OWASP parameters by default), a minimum length, a check
// against the 10,000 most common passwords that also sees through case, digit/symbol padding and
// repetition, and a dummy verification so a missing user costs the same time as a wrong password.
import { readFileSync } from "node:fs";
import { hash, verify } from "@node-rs/argon2";

// @node-rs/argon2 exports Algorithm as a const enum, which verbatimModuleSyntax cannot read: 2 is Argon2id.
const ARGON2ID = 2;

export const MAX_PASSWORD_LENGTH = 256;

const COMMON: ReadonlySet<string> = new Set(
  readFileSync(new URL("./common-passwords.txt", import.meta.url), "utf8")
    .split("\n")
    .filter((line) => line && !line.startsWith("#")),
);

export type PasswordSettings = { minLength: number; memoryKiB: number; iterations: number };

/** Why `password` is unacceptable, or undefined. Messages never echo the password. */
export const passwordProblem = (password: string, settings: Pick<PasswordSettings, "minLength">, username?: string): string | undefined => {
  const length = [...password].length;
  if (length < settings.minLength) return `must be at least ${settings.minLength} characters (got ${length})`;
  if (length > MAX_PASSWORD_LENGTH) return `must be at most ${MAX_PASSWORD_LENGTH} characters`;
  const lower = password.toLowerCase();
  if (new Set(lower).size < 4) return "uses too few distinct characters";
  if (username && username.length >= 3 && lower.includes(username.toLowerCase())) return "must not contain the username";
  // "Password2024!", "!!qwerty123456", "dragondragon": a common password with padding or repeated.
  const core = lower.replace(/^[^a-z]+|[^a-z]+$/g, "");
  const candidates = [lower, core, lower.replace(/[^a-z0-9]/g, "")];
  const unit = /^(.+?)\1+$/.exec(core)?.[1];
  if (unit) candidates.push(unit);
  if (candidates.some((c) => c.length >= 4 && COMMON.has(c))) return "is too common (it is, or is built from, one of the most used passwords)";
  return undefined;
};

export const passwordHasher = (settings: PasswordSettings) => {
  const options = { algorithm: ARGON2ID, memoryCost: settings.memoryKiB, timeCost: settings.iterations, parallelism: 1 };
  // Verified when the user does not exist (or cannot log in), so timing does not reveal which.
  let dummy: Promise<string> | undefined;
  const dummyHash = () => (dummy ??= hash("portcullis-dummy-password-for-timing", options));
  return {
    hash: (password: string) => hash(password, options),
    verify: async (phc: string, password: string): Promise<boolean> => {
      try {
        return await verify(phc, password);
      } catch {
        return false;
      }
    },
    /** Spends the time of one verification and returns false. */
    burn: async (password: string): Promise<false> => {
      await verify(await dummyHash(), password).catch(() => false);
      return false;
    },
    warm: () => dummyHash(),
  };
};
export type PasswordHasher = ReturnType<typeof passwordHasher>;
