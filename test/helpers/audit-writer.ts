// A separate process appending audit entries to a shared PostgreSQL database, as a second server
// node would, and signing checkpoints now and then. Used by the two-writer concurrency test.
import { openDatabase } from "../../src/db/client.ts";
import { buildServices } from "../../src/app/build.ts";
import { systemClock } from "../../src/lib/time.ts";
import { systemActor } from "../../src/domains/identity/principal.ts";
import { testConfig } from "./harness.ts";

const [url, name, countText, signingKeyPem] = process.argv.slice(2);
const count = Number(countText);
const db = await openDatabase({ databaseUrl: url!, poolSize: 4 });
const services = buildServices(testConfig({ "signing.privateKey": signingKeyPem }), db, systemClock);
const actor = systemActor(name!);
for (let i = 0; i < count; i++) {
  await db.transaction((tx) => services.audit.append(tx, actor, { action: "test.concurrent", details: { writer: name, i } }));
  if (i % 250 === 249) await services.transparency.issueCheckpoint();
}
await services.transparency.issueCheckpoint();
await db.close();
process.stdout.write(`${name} done\n`);
