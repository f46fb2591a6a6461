/**
 * What the workflows function is asked through its own queue, beside the events it follows: push a run's
 * stream to a connection that is opening (core/run-stream.ts), or look again at a node that waits for its
 * tenant's queued-task quota (core/workflow-runs.ts).
 */
export type WorkflowQueueMessage =
  | { stream_wake: { run_id: string; connection_id: string } }
  | { node_retry: { run_id: string; node: string; attempt: number } };

/** The message a queue body holds; undefined for any other body (an event). */
export function workflowQueueMessageOf(body: string): WorkflowQueueMessage | undefined {
  const value = JSON.parse(body) as Record<string, Record<string, unknown> | undefined>;
  const wake = value.stream_wake;
  if (typeof wake?.run_id === "string" && typeof wake.connection_id === "string") {
    return { stream_wake: { run_id: wake.run_id, connection_id: wake.connection_id } };
  }
  const retry = value.node_retry;
  if (
    typeof retry?.run_id === "string" &&
    typeof retry.node === "string" &&
    typeof retry.attempt === "number"
  ) {
    return { node_retry: { run_id: retry.run_id, node: retry.node, attempt: retry.attempt } };
  }
  return undefined;
}
