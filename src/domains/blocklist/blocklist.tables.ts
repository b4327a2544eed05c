// The blocklist table. One active row per (entity_type, value) is enforced by a partial unique index.
import { boolean, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const blockedEntities = pgTable("blocked_entities", {
  id: uuid("id").primaryKey(),
  entityType: text("entity_type").notNull(),
  value: text("value").notNull(),
  reason: text("reason").notNull(),
  createdBy: text("created_by").notNull(),
  createdAt: ts("created_at").notNull(),
  expiresAt: ts("expires_at"),
  active: boolean("active").notNull(),
  deactivatedAt: ts("deactivated_at"),
  deactivatedBy: text("deactivated_by"),
  forced: boolean("forced").notNull(),
});
