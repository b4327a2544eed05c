// Signed verdicts: every approval and rejection is an Ed25519 signature (the server's audit signing
// key) over the RFC 8785 canonical JSON of a statement naming the request, its action type, the
// payload's hash, the requester, the policy decision and the approvals it required, the approver, the
// verdict, the note and the time. Shared by the server (signing)
// and `portcullis action verify` (checking offline with the public key), so both build the same bytes.
import { createHash, sign, verify, type KeyObject } from "node:crypto";
import { canonicalize } from "../../lib/jcs.ts";
import { parseVerifierKey } from "../../lib/signed-note.ts";

export const STATEMENT_KIND = "portcullis.action-verdict.v1";

export type VerdictStatement = {
  kind: typeof STATEMENT_KIND;
  request_id: string;
  action_type: string;
  payload_hash: string;
  requested_by_id: string;
  decision: string;
  approvals_required: number;
  approver: { type: string; id: string; name: string };
  verdict: "approve" | "reject";
  note: string;
  signed_at: string;
};

/** SHA-256 (hex) of the payload's canonical JSON: what a verdict commits to. */
export const payloadHash = (payload: unknown): string => createHash("sha256").update(canonicalize(payload), "utf8").digest("hex");

export const statementBytes = (s: VerdictStatement): Buffer => Buffer.from(canonicalize(s), "utf8");

export const signStatement = (privateKey: KeyObject, s: VerdictStatement): string => sign(null, statementBytes(s), privateKey).toString("base64");

/** The shape of a request as GET /security/actions/{id} serves it (the fields verification needs). */
export type VerifiableAction = {
  id: string;
  action_type: string;
  status: string;
  payload: unknown;
  payload_hash: string;
  requested_by_id: string;
  approvals_required: number;
  decision: { outcome: string };
  approvals: {
    approver: { type: string; id: string; name: string };
    verdict: "approve" | "reject";
    note: string;
    signed_at: string;
    payload_hash: string;
    decision: string;
    key_id: string;
    signature: string;
  }[];
};

export type VerificationResult = {
  request_id: string;
  payload_hash_ok: boolean;
  key_id: string;
  verdicts: { approver: string; verdict: string; signed_at: string; valid: boolean; problem: string | null }[];
  /** Distinct valid approvals by someone other than the requester, against what the decision required. */
  approvals: { valid: number; required: number; sufficient: boolean };
  ok: boolean;
};

/**
 * Checks every verdict of `action` against `verifierKey` (the C2SP vkey of GET /audit/public-key).
 * The statement is rebuilt from the request (its id, its payload re-hashed, its decision), never
 * taken from the stored verdict, so a changed payload, decision, note or verdict fails.
 */
export const verifyAction = (action: VerifiableAction, verifierKey: string): VerificationResult => {
  const verifier = parseVerifierKey(verifierKey.trim());
  const keyIdHex = verifier.keyId.toString("hex");
  const recomputed = payloadHash(action.payload);
  const payloadOk = recomputed === action.payload_hash;
  const verdicts = action.approvals.map((a) => {
    const statement: VerdictStatement = {
      kind: STATEMENT_KIND,
      request_id: action.id,
      action_type: action.action_type,
      payload_hash: recomputed,
      requested_by_id: action.requested_by_id,
      decision: action.decision.outcome,
      approvals_required: action.approvals_required,
      approver: { type: a.approver.type, id: a.approver.id, name: a.approver.name },
      verdict: a.verdict,
      note: a.note,
      signed_at: a.signed_at,
    };
    let problem: string | null = null;
    if (a.key_id !== keyIdHex) problem = `signed with key ${a.key_id}, not ${keyIdHex}`;
    else {
      let good = false;
      try {
        good = verify(null, statementBytes(statement), verifier.publicKey, Buffer.from(a.signature, "base64"));
      } catch {
        good = false;
      }
      if (!good) problem = "signature does not match the request, its payload, the decision or this verdict";
    }
    if (problem === null && a.verdict === "approve" && a.approver.id === action.requested_by_id) problem = "the requester approved their own request";
    return { approverId: a.approver.id, approver: a.approver.name, verdict: a.verdict, signed_at: a.signed_at, valid: problem === null, problem };
  });
  // A request that went ahead (approved, executed, failed) must carry enough valid approvals: deleting
  // verdict rows must not leave a request that verifies with fewer than its decision required.
  const validApprovers = new Set(verdicts.filter((v) => v.valid && v.verdict === "approve").map((v) => v.approverId));
  const wentAhead = ["approved", "executed", "failed"].includes(action.status) && action.decision.outcome !== "ALLOW";
  const sufficient = !wentAhead || validApprovers.size >= action.approvals_required;
  return {
    request_id: action.id,
    payload_hash_ok: payloadOk,
    key_id: keyIdHex,
    verdicts: verdicts.map(({ approverId: _id, ...v }) => v),
    approvals: { valid: validApprovers.size, required: action.approvals_required, sufficient },
    ok: payloadOk && sufficient && verdicts.every((v) => v.valid),
  };
};
