// Classifiers: what a source's window says it is doing (brute force, credential stuffing, port scan,
// malware download, command execution), how severe that is, and whether it crosses the policy's
// blocking thresholds (max_failed_auth, max_scan_events). Pure functions of the counts.
// (windows.ts imports the event predicates from here; this module imports only its types.)
import type { DetectionEvent, SourceCounts } from "./windows.ts";

export const THREATS = ["brute_force", "credential_stuffing", "port_scan", "malware_download", "command_execution"] as const;
export type Threat = (typeof THREATS)[number];
export const SEVERITIES = ["critical", "high", "medium", "low"] as const;
export type Severity = (typeof SEVERITIES)[number];

export const isThreat = (value: unknown): value is Threat => typeof value === "string" && (THREATS as readonly string[]).includes(value);

const text = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

/** Whether an event counts as a failed authentication (no outcome given counts as failed). */
export const isFailedAuth = (e: Pick<DetectionEvent, "eventType" | "payload">) => e.eventType === "auth_attempt" && e.payload.outcome !== "success";
export const isDownload = (e: Pick<DetectionEvent, "eventType" | "payload">) =>
  e.eventType === "exploitation" && (text(e.payload.url) !== undefined || text(e.payload.shasum) !== undefined);

export type Thresholds = {
  /** policy.max_failed_auth: failed authentications in the window that trip a block */
  maxFailedAuth: number;
  /** policy.max_scan_events: scan events in the window that trip a block */
  maxScanEvents: number;
  /** distinct usernames in the window from which failed logins are credential stuffing, not brute force */
  distinctUsernames: number;
  /** distinct destination ports in the window that make a port scan */
  distinctPorts: number;
};

export type Detection = {
  threat: Threat;
  severity: Severity;
  /** crosses max_failed_auth or max_scan_events: the sentinel asks for a block */
  trips: boolean;
  reason: string;
};

const RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2, critical: 3 };
export const maxSeverity = (a: Severity, b: Severity): Severity => (RANK[a] >= RANK[b] ? a : b);
export const severityRank = (s: Severity) => RANK[s];

/**
 * The per-event (stateless) threat: the sensor's own label when it gave one, else malware_download
 * for an exploitation event naming a url or shasum, command_execution for a command event.
 */
export const classifyEvent = (event: Pick<DetectionEvent, "eventType" | "detectedThreat" | "payload">): string | null => {
  if (event.detectedThreat) return event.detectedThreat;
  if (isDownload(event)) return "malware_download";
  if (event.eventType === "command") return "command_execution";
  return null;
};

/** Whether the window crosses a blocking threshold (the issue's trigger for a block request). */
export const tripsBlock = (c: SourceCounts, t: Thresholds): boolean => c.failedAuth >= t.maxFailedAuth || c.scanEvents >= t.maxScanEvents;

/** Everything the window says about one source, most severe first. */
export const classifySource = (c: SourceCounts, t: Thresholds): Detection[] => {
  const out: Detection[] = [];
  const authTrips = c.failedAuth >= t.maxFailedAuth;
  // A success after many failures in the same window: the guessing may have worked.
  const compromised = c.successfulAuth > 0;
  if (c.distinctUsernames >= t.distinctUsernames && c.failedAuth > 0) {
    out.push({
      threat: "credential_stuffing",
      severity: compromised ? "critical" : "high",
      trips: authTrips,
      reason: `${c.failedAuth} failed logins with ${c.distinctUsernames} distinct usernames in the window${compromised ? `, and ${c.successfulAuth} successful` : ""}`,
    });
  } else if (authTrips) {
    out.push({
      threat: "brute_force",
      severity: compromised ? "critical" : "high",
      trips: true,
      reason: `${c.failedAuth} failed logins (threshold ${t.maxFailedAuth}) with ${c.distinctUsernames} distinct username(s) in the window${compromised ? `, and ${c.successfulAuth} successful` : ""}`,
    });
  }
  const scanTrips = c.scanEvents >= t.maxScanEvents;
  if (scanTrips || c.distinctPorts >= t.distinctPorts) {
    out.push({
      threat: "port_scan",
      severity: "medium",
      trips: scanTrips,
      reason: scanTrips
        ? `${c.scanEvents} scan events (threshold ${t.maxScanEvents}) in the window`
        : `${c.distinctPorts} distinct destination ports (threshold ${t.distinctPorts}) in the window`,
    });
  }
  const declared = new Set(c.declaredThreats);
  if (c.downloads > 0 || declared.has("malware_download"))
    out.push({ threat: "malware_download", severity: "critical", trips: false, reason: `${c.downloads || "a"} malware download(s) or upload(s) in the window` });
  if (c.commands > 0 || declared.has("command_execution"))
    out.push({ threat: "command_execution", severity: "medium", trips: false, reason: `${c.commands || "some"} command(s) run in the window` });
  // Threats a sensor named that the counts alone did not show (a native sender's own detection).
  for (const name of ["brute_force", "credential_stuffing", "port_scan"] as const) {
    if (declared.has(name) && !out.some((d) => d.threat === name))
      out.push({ threat: name, severity: name === "port_scan" ? "low" : "medium", trips: false, reason: `a sensor reported ${name}` });
  }
  return out.sort((a, b) => RANK[b.severity] - RANK[a.severity]);
};
