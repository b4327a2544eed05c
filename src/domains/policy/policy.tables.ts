// The security policy table: one row (id = 1), created by migration 0001 with the seed's defaults.
import { boolean, integer, pgTable, smallint, text, timestamp } from "drizzle-orm/pg-core";

export const securityPolicy = pgTable("security_policy", {
  id: smallint("id").primaryKey(),
  defaultMode: text("default_mode").notNull(),
  autoElevate: boolean("auto_elevate").notNull(),
  autoLockdown: boolean("auto_lockdown").notNull(),
  maxFailedAuth: integer("max_failed_auth").notNull(),
  maxScanEvents: integer("max_scan_events").notNull(),
  detectionWindowMinutes: integer("detection_window_minutes").notNull(),
  notes: text("notes").notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull(),
  updatedBy: text("updated_by").notNull(),
});
