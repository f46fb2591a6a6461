import { truncate } from "../../core/execution.ts";
import type { ContainerRunner, PodLaunch, PodLogs } from "../../core/ports.ts";

/** Pods that run nowhere: what was started and stopped is kept for tests to look at, with their logs. */
export class MemoryContainers implements ContainerRunner, PodLogs {
  /** Run id -> its launch and container; a run's container is started once. */
  readonly launches = new Map<string, PodLaunch & { containerId: string }>();
  readonly stops: { pool: string; runId: string; reason: string }[] = [];
  /** Container id -> its log. */
  readonly logs = new Map<string, string>();
  /** The next start fails with this reason. */
  failNextStart?: string;
  private started = 0;

  async start(launch: PodLaunch): Promise<{ containerId: string }> {
    const refusal = this.failNextStart;
    this.failNextStart = undefined;
    if (refusal !== undefined) throw new Error(refusal);
    const known = this.launches.get(launch.runId);
    if (known) return { containerId: known.containerId };
    const containerId = `container-${++this.started}`;
    this.launches.set(launch.runId, { ...launch, containerId });
    return { containerId };
  }

  async stop(pool: string, runId: string, reason: string): Promise<void> {
    this.stops.push({ pool, runId, reason });
  }

  async read(_pool: string, containerId: string, maxBytes: number): Promise<string> {
    return truncate(this.logs.get(containerId) ?? "", maxBytes);
  }

  async tail(_pool: string, containerId: string, maxBytes: number): Promise<string> {
    return truncate(this.logs.get(containerId) ?? "", maxBytes, "end");
  }
}
