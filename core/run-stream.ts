/**
 * The live results stream of a workflow run, pushed to the connections that watch it: API Gateway's
 * WebSocket connections on AWS, the local server's sockets locally (the StreamConnections port).
 *
 * A connection is an item in the run's partition with a cursor, the seq of the last message it was sent.
 * Whoever pushes (the workflows function after it stores a message, or when a connection opens) sends
 * each connection its messages after its cursor, in order, then moves the cursor. Two pushes at once may
 * both send a message, never out of order: a push starts at a cursor only once everything up to it was
 * sent, and clients drop a seq they have had. Messages are numbered with no gap, so none is skipped.
 */
import type { Deps } from "./deps.ts";
import type { StreamConnection } from "./ports.ts";
import type { RunMessage } from "./workflow-runs.ts";

/** The stream's path on the local server (on AWS, the WebSocket API's URL takes the ids as its query). */
export const RUN_STREAM_PATH = "/v2/workflows/{id}/runs/{run_id}/stream";
/** API Gateway closes a WebSocket after 2 hours: a connection's item expires with it. */
const STREAM_CONNECTION_SECONDS = 2 * 3600;
/**
 * API Gateway takes a frame of 128 KB at most. Outputs over 8 KB (64 KB a node) are references, so a
 * message is far under it; one over it is sent without its outputs, which GET …/runs/{run_id} has.
 */
export const STREAM_FRAME_BYTES = 128 * 1024;
/** A connection just opened may not take frames yet (API Gateway opens it once $connect answers). */
const OPENING_MS = 5_000;
const OPENING_RETRY_MS = 100;

/** A message as its frame: `{type, seq, data}`. */
export function frameOf({ type, seq, data }: RunMessage): string {
  const frame = JSON.stringify({ type, seq, data });
  if (Buffer.byteLength(frame) <= STREAM_FRAME_BYTES) return frame;
  return JSON.stringify({ type, seq, data: { ...data, outputs: undefined, truncated: true } });
}

/** Stores a connection that opens on a run's stream after `after`, and has it sent what it missed. */
export async function watchRunStream(deps: Deps, runId: string, connectionId: string, after: number) {
  const now = deps.clock.now();
  await deps.workflowRuns.addStreamConnection(runId, {
    connection_id: connectionId,
    cursor: after,
    connected_at: now.toISOString(),
    expires_at: Math.floor(now.getTime() / 1000) + STREAM_CONNECTION_SECONDS,
  });
  await deps.workflowQueue.send({ stream_wake: { run_id: runId, connection_id: connectionId } });
}

/**
 * Sends each connection of the run (or only `connectionId`) the messages after its cursor. A connection
 * that is gone is forgotten; one that has had `finish_workflow` is closed and forgotten.
 */
export async function pushRunStream(deps: Deps, runId: string, connectionId?: string): Promise<void> {
  const now = deps.clock.now();
  const connections = await deps.workflowRuns.listStreamConnections(runId, Math.floor(now.getTime() / 1000));
  await Promise.all(
    connections
      .filter((c) => connectionId === undefined || c.connection_id === connectionId)
      .map((c) => pushTo(deps, runId, c)),
  );
}

async function pushTo(deps: Deps, runId: string, connection: StreamConnection): Promise<void> {
  const messages = await deps.workflowRuns.listRunMessages(runId, connection.cursor);
  for (const message of messages) {
    if (!(await sendOnceOpen(deps, connection, frameOf(message)))) {
      await deps.workflowRuns.removeStreamConnection(runId, connection.connection_id);
      return;
    }
  }
  const last = messages.at(-1);
  if (!last) return;
  if (last.type === "finish_workflow") {
    await deps.streams.close(connection.connection_id);
    await deps.workflowRuns.removeStreamConnection(runId, connection.connection_id);
    return;
  }
  await deps.workflowRuns.moveStreamCursor(runId, connection.connection_id, connection.cursor, last.seq);
}

/** Sends a frame, waiting a little for a connection that is still opening; false when it is gone. */
async function sendOnceOpen(deps: Deps, connection: StreamConnection, frame: string): Promise<boolean> {
  const opening = Date.parse(connection.connected_at) + OPENING_MS;
  for (;;) {
    if (await deps.streams.send(connection.connection_id, frame)) return true;
    if (deps.clock.now().getTime() >= opening) return false;
    await new Promise((resolve) => setTimeout(resolve, OPENING_RETRY_MS));
  }
}
