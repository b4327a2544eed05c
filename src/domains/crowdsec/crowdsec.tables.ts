// Tables of the CrowdSec Local API surface (migration 0008_crowdsec.sql). crowdsec_decisions is
// written only by the database trigger that projects IP and CIDR blocks; nothing here inserts into it.
import { bigint, boolean, integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const crowdsecBouncers = pgTable("crowdsec_bouncers", {
  id: uuid("id").primaryKey(),
  name: text("name").notNull(),
  keyHash: text("key_hash").notNull(),
  keyPrefix: text("key_prefix").notNull(),
  createdAt: ts("created_at").notNull(),
  createdBy: text("created_by").notNull(),
  agentName: text("agent_name"),
  agentVersion: text("agent_version"),
  lastPullAt: ts("last_pull_at"),
  lastAddress: text("last_address"),
  streamSeq: bigint("stream_seq", { mode: "number" }),
  streamAt: ts("stream_at"),
});

export const crowdsecWatchers = pgTable("crowdsec_watchers", {
  id: uuid("id").primaryKey(),
  machineId: text("machine_id").notNull(),
  passwordHash: text("password_hash").notNull(),
  validated: boolean("validated").notNull(),
  validatedAt: ts("validated_at"),
  validatedBy: text("validated_by"),
  createdAt: ts("created_at").notNull(),
  registeredFrom: text("registered_from"),
  agentName: text("agent_name"),
  agentVersion: text("agent_version"),
  scenarios: jsonb("scenarios").$type<string[]>().notNull(),
  lastLoginAt: ts("last_login_at"),
  lastHeartbeatAt: ts("last_heartbeat_at"),
  lastPushAt: ts("last_push_at"),
  lastAddress: text("last_address"),
  tokenVersion: integer("token_version").notNull(),
});

export const crowdsecAlerts = pgTable("crowdsec_alerts", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
  watcherId: uuid("watcher_id").notNull(),
  machineId: text("machine_id").notNull(),
  receivedAt: ts("received_at").notNull(),
  scenario: text("scenario").notNull(),
  sourceScope: text("source_scope").notNull(),
  sourceValue: text("source_value").notNull(),
  sourceIp: text("source_ip"),
  eventsCount: integer("events_count").notNull(),
  startAt: text("start_at").notNull(),
  stopAt: text("stop_at").notNull(),
  simulated: boolean("simulated").notNull(),
  alert: jsonb("alert").$type<Record<string, unknown>>().notNull(),
  eventIds: jsonb("event_ids").$type<string[]>().notNull(),
  proposal: jsonb("proposal").$type<Record<string, unknown> | null>(),
  // 0009: idempotent pushes (see the migration)
  alertKey: text("alert_key"),
  eventsStored: boolean("events_stored").notNull(),
  completedAt: ts("completed_at"),
});

export const crowdsecUsageMetrics = pgTable("crowdsec_usage_metrics", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
  receivedAt: ts("received_at").notNull(),
  machineType: text("machine_type").notNull(),
  machineId: text("machine_id").notNull(),
  body: jsonb("body").$type<unknown>().notNull(),
});

export const crowdsecDecisions = pgTable("crowdsec_decisions", {
  id: bigint("id", { mode: "number" }).primaryKey(),
  blockId: uuid("block_id").notNull(),
  scope: text("scope").notNull(),
  value: text("value").notNull(),
  reason: text("reason").notNull(),
  createdBy: text("created_by").notNull(),
  createdAt: ts("created_at").notNull(),
  expiresAt: ts("expires_at"),
  deletedSeq: bigint("deleted_seq", { mode: "number" }),
  deletedAt: ts("deleted_at"),
  deletedBy: text("deleted_by"),
});
