// CrowdSec test helpers: an ajv validator over the Local API swagger's definitions (the contract
// in shared/fixtures/crowdsec), and where the real peer binaries are unpacked (.ci/run fetches them).
import { readFileSync, existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Ajv, type ErrorObject } from "ajv";
import { parse } from "yaml";

export const CROWDSEC_FIXTURES = join(import.meta.dirname, "..", "..", "..", "shared", "fixtures", "crowdsec");

/** validate(definitionName, value): true when `value` matches #/definitions/<name>; errors on .errors. */
export const lapiValidator = () => {
  const doc = parse(readFileSync(join(CROWDSEC_FIXTURES, "localapi_swagger.yaml"), "utf8")) as { definitions: Record<string, unknown> };
  // Swagger 2.0 formats (float, int32, password) and readOnly are annotations here.
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
  const fn = (name: string, value: unknown): boolean => {
    const check = ajv.compile({ $ref: `#/definitions/${name}`, definitions: doc.definitions });
    const ok = check(value);
    fn.errors = check.errors ?? null;
    return ok;
  };
  fn.errors = null as ErrorObject[] | null | undefined;
  return fn;
};

/** Where .ci/run unpacks Debian's crowdsec packages (apt-get download + dpkg -x). */
export const PEER_CACHE = process.env.PORTCULLIS_PEER_CACHE ?? join(homedir(), ".cache", "portcullis-peers");
export const peerBinary = (pkg: string, bin: string): string | undefined => {
  const path = join(PEER_CACHE, pkg, "usr", "bin", bin);
  return existsSync(path) ? path : undefined;
};
