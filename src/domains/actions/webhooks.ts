// Webhook notifications of action transitions. A transition writes its deliveries into the outbox
// table inside its own transaction (so a notification exists exactly when the transition committed);
// a dispatcher sends them after commit with an HMAC-SHA256 signature, retries failures with
// exponential backoff and records every attempt. Sending never blocks or fails the workflow.
import { createHmac } from "node:crypto";
import { afterCommit, type Tx } from "../../db/client.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { ActionsRepo, DeliveryRow } from "./actions.repo.ts";

export const WEBHOOK_EVENTS = ["created", "approval", "approved", "rejected", "executed", "failed", "cancelled", "expired", "dry_run", "dry_run_only"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export type WebhookSettings = {
  webhooks: readonly string[];
  webhookSecret?: string | undefined;
  webhookMaxAttempts: number;
  webhookRetryBaseMs: number;
  webhookTimeoutMs: number;
};

type Hook = { url: string; events: ReadonlySet<string> };

/** "<event>[+<event>...]|<url>" entries; an unknown event name stops startup (a typo would silently never fire). */
export const parseWebhooks = (entries: readonly string[]): Hook[] =>
  entries.map((entry, i) => {
    const bar = entry.indexOf("|");
    const events = entry.slice(0, bar).split("+");
    for (const e of events)
      if (e !== "*" && !(WEBHOOK_EVENTS as readonly string[]).includes(e))
        throw new Error(`actions.webhooks[${i}]: unknown event "${e}"; events are * or ${WEBHOOK_EVENTS.join(", ")}`);
    return { url: entry.slice(bar + 1), events: new Set(events) };
  });

export const SIGNATURE_HEADER = "x-portcullis-signature-256";
export const signBody = (secret: string, body: string): string => `sha256=${createHmac("sha256", secret).update(body, "utf8").digest("hex")}`;

const LEASE_MS = 60_000;
const MAX_BACKOFF_MS = 3_600_000;
const IDLE_POLL_MS = 30_000;

type Deps = {
  repo: ActionsRepo;
  settings: WebhookSettings;
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
};

export const webhookOutbox = ({ repo, settings, log }: Deps) => {
  const hooks = parseWebhooks(settings.webhooks);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  /** Writes a delivery per matching hook into `tx`; they are sent once it commits. */
  const enqueue = async (tx: Tx, requestId: string, event: WebhookEvent, body: Record<string, unknown>, at: Date): Promise<void> => {
    const matching = hooks.filter((h) => h.events.has("*") || h.events.has(event));
    if (!matching.length) return;
    const rows: DeliveryRow[] = matching.map((h) => {
      const id = uuidv7();
      return {
        id,
        requestId,
        event,
        url: h.url,
        // Stored as sent: every retry carries the same bytes and signature.
        body: JSON.stringify({ delivery_id: id, event, occurred_at: at.toISOString(), ...body }),
        status: "pending",
        attempts: 0,
        attemptLog: [],
        // Wall-clock time, not the app clock: retries are real network timing.
        nextAttemptAt: new Date(),
        createdAt: at,
        deliveredAt: null,
      };
    });
    await repo.insertDeliveries(rows, tx);
    afterCommit(tx, kick);
  };

  const send = async (row: DeliveryRow): Promise<void> => {
    const started = Date.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(row.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "portcullis-webhooks",
          "x-portcullis-event": row.event,
          "x-portcullis-delivery": row.id,
          [SIGNATURE_HEADER]: signBody(settings.webhookSecret ?? "", row.body),
        },
        body: row.body,
        redirect: "manual",
        signal: AbortSignal.timeout(settings.webhookTimeoutMs),
      });
      statusCode = res.status;
      await res.body?.cancel().catch(() => {});
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
    } catch (e) {
      error = e instanceof Error ? (e.name === "TimeoutError" ? `no answer within ${settings.webhookTimeoutMs} ms` : (e.cause as Error | undefined)?.message ?? e.message) : String(e);
    }
    const now = new Date();
    const attempts = row.attempts + 1;
    const delivered = error === null;
    const exhausted = !delivered && attempts >= settings.webhookMaxAttempts;
    const backoff = Math.min(MAX_BACKOFF_MS, settings.webhookRetryBaseMs * 2 ** (attempts - 1));
    await repo.recordAttempt(
      row.id,
      { at: now.toISOString(), status_code: statusCode, error, duration_ms: now.getTime() - started },
      { status: delivered ? "delivered" : exhausted ? "failed" : "pending", nextAttemptAt: delivered || exhausted ? now : new Date(now.getTime() + backoff), deliveredAt: delivered ? now : null },
    );
    if (exhausted) log?.warn({ delivery_id: row.id, url: new URL(row.url).origin, attempts, error }, "webhook delivery gave up");
  };

  const drainOnce = async (): Promise<void> => {
    for (;;) {
      const now = new Date();
      const due = await repo.claimDue(now, new Date(now.getTime() + LEASE_MS), 20);
      if (!due.length) return;
      await Promise.all(due.map((row) => send(row).catch((err: unknown) => log?.error({ err, delivery_id: row.id }, "recording a webhook attempt failed"))));
    }
  };

  const schedule = async () => {
    if (stopped) return;
    const next = await repo.nextDueAt().catch(() => undefined);
    const wait = next ? Math.max(0, next.getTime() - Date.now()) : IDLE_POLL_MS;
    clearTimeout(timer);
    timer = setTimeout(kick, Math.min(wait, IDLE_POLL_MS));
    timer.unref();
  };

  /** Sends what is due now (again, if asked while a round is running), then sleeps until the next retry. */
  function kick(): void {
    if (stopped || !hooks.length) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await drainOnce().catch((err: unknown) => log?.error({ err }, "webhook dispatch failed"));
      } while (again && !stopped);
      await schedule();
    })().finally(() => {
      running = undefined;
    });
  }

  const start = () => kick();
  const stop = async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };

  return { enqueue, start, stop, kick, configured: hooks.length > 0 };
};
export type WebhookOutbox = ReturnType<typeof webhookOutbox>;
