// Tables owned by the identity domain (users and API keys). Other domains go through the service.
import { boolean, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const users = pgTable("users", {
  id: uuid("id").primaryKey(),
  username: text("username").notNull(),
  role: text("role").notNull(),
  disabled: boolean("disabled").notNull(),
  createdAt: ts("created_at").notNull(),
  createdBy: text("created_by").notNull(),
});

export const apiKeys = pgTable("api_keys", {
  id: uuid("id").primaryKey(),
  prefix: text("prefix").notNull(),
  keyHash: text("key_hash").notNull(),
  name: text("name").notNull(),
  userId: uuid("user_id").notNull(),
  role: text("role").notNull(),
  createdAt: ts("created_at").notNull(),
  createdBy: text("created_by").notNull(),
  expiresAt: ts("expires_at"),
  revokedAt: ts("revoked_at"),
  revokedBy: text("revoked_by"),
});
