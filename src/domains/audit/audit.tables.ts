// Tables of the audit domain: the append-only entries (each with the canonical JSON it was hashed
// from), the Merkle tree's complete subtrees, and the signed checkpoints. UPDATE, DELETE and
// TRUNCATE are rejected by triggers on all three (migrations 0001, 0002).
import { bigint, customType, pgTable, smallint, text, timestamp } from "drizzle-orm/pg-core";

/** bytea as a Buffer on both drivers (PGlite returns Uint8Array, node-postgres Buffer). */
export const bytea = customType<{ data: Buffer; driverData: Uint8Array }>({
  dataType: () => "bytea",
  fromDriver: (value) => Buffer.from(value),
  toDriver: (value) => value,
});

export const auditLog = pgTable("audit_log", {
  seq: bigint("seq", { mode: "number" }).primaryKey(),
  occurredAt: timestamp("occurred_at", { withTimezone: true, mode: "date" }).notNull(),
  actorType: text("actor_type").notNull(),
  actorId: text("actor_id").notNull(),
  actorName: text("actor_name").notNull(),
  action: text("action").notNull(),
  targetType: text("target_type"),
  targetId: text("target_id"),
  requestId: text("request_id"),
  leaf: text("leaf").notNull(),
  leafHash: bytea("leaf_hash").notNull(),
});

export const auditTree = pgTable("audit_tree", {
  level: smallint("level").notNull(),
  idx: bigint("idx", { mode: "number" }).notNull(),
  hash: bytea("hash").notNull(),
});

export const auditCheckpoints = pgTable("audit_checkpoints", {
  treeSize: bigint("tree_size", { mode: "number" }).primaryKey(),
  rootHash: bytea("root_hash").notNull(),
  note: text("note").notNull(),
  keyId: text("key_id").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull(),
});
