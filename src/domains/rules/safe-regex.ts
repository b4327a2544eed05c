// Regular expressions for the `matches` operator without ReDoS. A pattern is accepted only if V8's
// linear-time engine (automaton-based, no backtracking) can run it, which rules out backreferences and
// lookaround. It then runs on the ordinary backtracking engine, which is 10-100x faster on normal
// input, with V8's fallback armed: after REGEXP_BACKTRACK_LIMIT backtracks in one match, V8 reruns that
// match on the linear-time engine. So a typical match costs tens of ns and a hostile one stays linear.
// If a Node.js build lacks the linear engine, we refuse the shapes that make backtracking explode
// (a repeated group that itself repeats or alternates) instead. Patterns are capped at
// MAX_PATTERN_LENGTH and inputs longer than MAX_MATCH_INPUT never match.
import { setFlagsFromString } from "node:v8";

export const MAX_PATTERN_LENGTH = 256;
export const MAX_MATCH_INPUT = 4096;

export const REGEXP_BACKTRACK_LIMIT = 10_000;

/** Whether V8's linear-time engine backs our patterns (decided once per process). */
export const LINEAR_REGEX_ENGINE: boolean = (() => {
  try {
    // The first flag makes the `l` flag available (used here to check a pattern qualifies). The other
    // two arm the fallback for every regexp in the process: one that backtracks excessively is rerun on
    // the linear engine, with the same result. Nothing else changes for other code.
    setFlagsFromString("--enable-experimental-regexp-engine");
    setFlagsFromString("--enable-experimental-regexp-engine-on-excessive-backtracks");
    setFlagsFromString(`--regexp-backtracks-before-fallback=${REGEXP_BACKTRACK_LIMIT}`);
    return new RegExp("a+", "l").test("aa");
  } catch {
    return false;
  }
})();

export type SafeRegexResult = { ok: true; regex: RegExp } | { ok: false; message: string };

// Backreferences and lookaround: refused with a precise message whatever the engine.
const BACKREFERENCE = /\\[1-9]|\\k</;
const LOOKAROUND = /\(\?<?[=!]/;

/**
 * Shapes that backtrack exponentially: a group (or class) quantified with * + {n,} {n,m>1} whose body
 * contains a quantifier or an alternation, e.g. (a+)+, (a|aa)*, (\d*)+. Used only without the linear engine.
 */
export const hasNestedRepetition = (pattern: string): boolean => {
  type Group = { quantified: boolean; alternates: boolean };
  const stack: Group[] = [{ quantified: false, alternates: false }];
  let i = 0;
  const repeatsAt = (at: number): boolean => {
    const c = pattern[at];
    if (c === "*" || c === "+") return true;
    if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(at));
      if (!m) return false;
      if (m[2] === undefined) return Number(m[1]) > 1;
      return m[3] === "" || Number(m[3]) > 1;
    }
    return false;
  };
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === "\\") {
      i += 2;
      if (repeatsAt(i)) stack[stack.length - 1]!.quantified = true;
      continue;
    }
    if (c === "[") {
      i++;
      while (i < pattern.length && pattern[i] !== "]") i += pattern[i] === "\\" ? 2 : 1;
      i++;
      if (repeatsAt(i)) stack[stack.length - 1]!.quantified = true;
      continue;
    }
    if (c === "(") {
      stack.push({ quantified: false, alternates: false });
      i++;
      continue;
    }
    if (c === ")") {
      const group = stack.length > 1 ? stack.pop()! : { quantified: false, alternates: false };
      i++;
      if (repeatsAt(i)) {
        if (group.quantified || group.alternates) return true;
        stack[stack.length - 1]!.quantified = true;
      }
      // A quantifier inside propagates outwards: ((a+)b)+ is as bad as (a+)+.
      if (group.quantified) stack[stack.length - 1]!.quantified = true;
      continue;
    }
    if (c === "|") stack[stack.length - 1]!.alternates = true;
    else if (repeatsAt(i)) stack[stack.length - 1]!.quantified = true;
    i++;
  }
  return false;
};

/** Compiles a pattern for `matches`, or says why it is refused. */
export const compileSafeRegex = (pattern: string): SafeRegexResult => {
  if (pattern.length === 0) return { ok: false, message: "the pattern is empty" };
  if (pattern.length > MAX_PATTERN_LENGTH) return { ok: false, message: `the pattern is longer than ${MAX_PATTERN_LENGTH} characters` };
  if (BACKREFERENCE.test(pattern)) return { ok: false, message: "backreferences (\\1, \\k<name>) are not allowed: they cannot be matched in linear time" };
  if (LOOKAROUND.test(pattern)) return { ok: false, message: "lookahead and lookbehind are not allowed: they cannot be matched in linear time" };
  if (!LINEAR_REGEX_ENGINE && hasNestedRepetition(pattern))
    return { ok: false, message: "a repeated group that itself repeats or alternates (like (a+)+ or (a|b)*) can take exponential time" };
  try {
    // Compiling with `l` proves the linear engine can take over this pattern when it backtracks too much.
    if (LINEAR_REGEX_ENGINE) new RegExp(pattern, "l");
    return { ok: true, regex: new RegExp(pattern) };
  } catch (error) {
    const message = (error as Error).message.replace(/^Invalid regular expression: /, "");
    return { ok: false, message: `not a valid regular expression for the linear-time engine: ${message}` };
  }
};
