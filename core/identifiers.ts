/** S3 object keys and run ids: how the domain names what it stores. */
const UUID_LENGTH = 36;

/** Zero-padded so that a task's runs sort in order. */
export const runIdFor = (taskUuid: string, runNumber: number) =>
  `${taskUuid}-r${String(runNumber).padStart(6, "0")}`;

/** The task a run id belongs to, or undefined when the id is not one of ours. */
export function taskUuidOfRun(runId: string): string | undefined {
  return /^[0-9a-f-]{36}-r\d{6}$/.test(runId) ? runId.slice(0, UUID_LENGTH) : undefined;
}

export const blobKeys = {
  input: (taskUuid: string, path: string) => `files/${taskUuid}/input/${path}`,
  output: (taskUuid: string, path: string) => `files/${taskUuid}/output/${path}`,
  filesPrefix: (taskUuid: string) => `files/${taskUuid}/`,
  log: (taskUuid: string, runId: string) => `logs/${taskUuid}/${runId}.log`,
};
