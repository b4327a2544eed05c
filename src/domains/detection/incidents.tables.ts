// The incidents table (migration 0006; indexes for listing by source in 0007): one open incident per
// (source, threat), enforced by the partial unique index incidents_one_open.
import { jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const incidents = pgTable("incidents", {
  id: uuid("id").primaryKey(),
  sourceIp: text("source_ip").notNull(),
  threat: text("threat").notNull(),
  severity: text("severity").notNull(),
  status: text("status").notNull(),
  openedAt: ts("opened_at").notNull(),
  updatedAt: ts("updated_at").notNull(),
  lastEventAt: ts("last_event_at").notNull(),
  evidence: jsonb("evidence").notNull(),
  actionRequestId: uuid("action_request_id"),
  resolvedAt: ts("resolved_at"),
  resolvedBy: text("resolved_by"),
});
