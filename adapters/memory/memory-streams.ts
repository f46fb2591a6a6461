import type { StreamConnections } from "../../core/ports.ts";

/** Runs' stream connections in memory: each open one keeps the frames it was sent. */
export class MemoryStreams implements StreamConnections {
  /** Frames sent, by connection; a connection is open while it has an entry here and is not closed. */
  readonly frames = new Map<string, string[]>();
  readonly closed = new Set<string>();

  open(connectionId: string): void {
    this.frames.set(connectionId, []);
  }

  async send(connectionId: string, frame: string): Promise<boolean> {
    const frames = this.frames.get(connectionId);
    if (!frames || this.closed.has(connectionId)) return false;
    frames.push(frame);
    return true;
  }

  async close(connectionId: string): Promise<void> {
    this.closed.add(connectionId);
  }
}
