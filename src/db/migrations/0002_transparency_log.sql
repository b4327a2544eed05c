-- The audit log as an RFC 9162 Merkle transparency log: audit_tree holds the hash of every complete
-- aligned subtree so any root or proof costs O(log n) reads; audit_checkpoints keeps every signed
-- checkpoint.

-- Node (level, idx) = Merkle tree hash of leaves [idx * 2^level, (idx + 1) * 2^level).
CREATE TABLE audit_tree (
  level smallint NOT NULL CHECK (level >= 0 AND level < 64),
  idx bigint NOT NULL CHECK (idx >= 0),
  hash bytea NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
);
CREATE TRIGGER audit_tree_append_only BEFORE UPDATE OR DELETE ON audit_tree
  FOR EACH ROW EXECUTE FUNCTION portcullis_reject_mutation();
CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON audit_tree
  FOR EACH STATEMENT EXECUTE FUNCTION portcullis_reject_mutation();

-- One checkpoint per tree size: two nodes signing the same size must agree on the root.
CREATE TABLE audit_checkpoints (
  tree_size bigint PRIMARY KEY CHECK (tree_size >= 0),
  root_hash bytea NOT NULL CHECK (length(root_hash) = 32),
  note text NOT NULL,
  key_id text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION portcullis_reject_mutation();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION portcullis_reject_mutation();

-- Takes the appender lock and returns the tree size and the last leaf's hash in one round trip. In a
-- VOLATILE plpgsql function each statement takes a fresh snapshot, so both are read after the lock is
-- held (a single SELECT calling both would read them from a snapshot taken before waiting for it).
CREATE FUNCTION portcullis_audit_lock_for_append(lock_key bigint, OUT size bigint, OUT last_leaf_hash bytea)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(lock_key);
  SELECT seq + 1, leaf_hash INTO size, last_leaf_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
  IF size IS NULL THEN
    size := 0;
  END IF;
END
$$;
