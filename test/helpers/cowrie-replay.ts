// Real Cowrie lines from ../shared/fixtures/cowrie, re-addressed and re-timed, framed as stock Cowrie's
// Splunk HEC output sends them: for replaying an attack now, from an address the test chooses.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const FIXTURES = join(import.meta.dirname, "../../../shared/fixtures/cowrie");

/** Every line of the fixtures whose src_ip is `sourceIp`, in file order. */
export const cowrieLinesOf = (sourceIp: string): string[] =>
  readdirSync(FIXTURES)
    .sort()
    .flatMap((f) => readFileSync(join(FIXTURES, f), "utf8").split("\n"))
    .filter((line) => line.trim() && (JSON.parse(line) as { src_ip?: string }).src_ip === sourceIp);

/**
 * The lines with every mention of `from` replaced by `to` and their timestamps moved to end at `end`
 * (one event every 200 ms, in the original order), as one HEC body of concatenated envelopes.
 */
export const hecBody = (lines: string[], from: string, to: string, end = new Date()): string =>
  lines
    .map((line, i) => {
      const at = new Date(end.getTime() - (lines.length - 1 - i) * 200);
      const event = JSON.parse(line.split(from).join(to)) as Record<string, unknown>;
      event.timestamp = at.toISOString();
      return JSON.stringify({ event, host: "cowrie-test", sourcetype: "cowrie", time: at.getTime() / 1000 });
    })
    .join("");

/** How many of the lines are failed logins. */
export const failedLogins = (lines: string[]) => lines.filter((l) => (JSON.parse(l) as { eventid: string }).eventid === "cowrie.login.failed").length;
