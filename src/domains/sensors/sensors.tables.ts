// The sensor tables of migration 0006 as drizzle sees them (registry, keys, triage state, rollups).
// Events are written and read with hand-written SQL in sensors.repo.ts (bulk unnest inserts, bigint ids).
import { bigint, boolean, customType, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });

export const honeypotInstances = pgTable("honeypot_instances", {
  id: uuid("id").primaryKey(),
  name: text("name").notNull(),
  honeypotType: text("honeypot_type").notNull(),
  location: text("location").notNull(),
  metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull(),
  active: boolean("active").notNull(),
  createdAt: ts("created_at").notNull(),
  createdBy: text("created_by").notNull(),
  updatedAt: ts("updated_at").notNull(),
  deactivatedAt: ts("deactivated_at"),
  deactivatedBy: text("deactivated_by"),
  lastEventAt: ts("last_event_at"),
});

export const honeypotKeys = pgTable("honeypot_keys", {
  id: uuid("id").primaryKey(),
  sensorId: uuid("sensor_id").notNull(),
  prefix: text("prefix").notNull(),
  keyHash: bytea("key_hash").notNull(),
  createdAt: ts("created_at").notNull(),
  createdBy: text("created_by").notNull(),
  expiresAt: ts("expires_at"),
  revokedAt: ts("revoked_at"),
});

export const honeypotEventState = pgTable("honeypot_event_state", {
  eventId: bigint("event_id", { mode: "bigint" }).primaryKey(),
  processedAt: ts("processed_at").notNull(),
  processedBy: text("processed_by").notNull(),
});
