/** S3 object keys, run ids and fingerprints: how the domain names what it stores. */
const UUID_LENGTH = 36;

/** Zero-padded so that a task's runs sort in order. */
export const runIdFor = (taskUuid: string, runNumber: number) =>
  `${taskUuid}-r${String(runNumber).padStart(6, "0")}`;

/** The task a run id belongs to, or undefined when the id is not one of ours. */
export function taskUuidOfRun(runId: string): string | undefined {
  return /^[0-9a-f-]{36}-r\d{6}$/.test(runId) ? runId.slice(0, UUID_LENGTH) : undefined;
}

/** How a run's log is stored. */
export const LOG_CONTENT_TYPE = "text/plain; charset=utf-8";
/** A saved CLI session (containers/worker/sessions.ts). */
export const SESSION_CONTENT_TYPE = "application/gzip";

export const blobKeys = {
  input: (taskUuid: string, path: string) => `files/${taskUuid}/input/${path}`,
  /** A run's output files: each run has its own, so a late run never overwrites a later one's. */
  output: (taskUuid: string, runId: string, path: string) => `files/${taskUuid}/runs/${runId}/${path}`,
  inputPrefix: (taskUuid: string) => `files/${taskUuid}/input/`,
  outputPrefix: (taskUuid: string, runId: string) => `files/${taskUuid}/runs/${runId}/`,
  log: (taskUuid: string, runId: string) => `logs/${taskUuid}/${runId}.log`,
  /** The CLI session the task's latest unfinished run left, for a retry to take up (gzipped JSON). */
  session: (taskUuid: string) => `sessions/${taskUuid}.json.gz`,
};

/** Canonical JSON (sorted keys) so that the same value always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
