import {
  type CloudWatchLogsClient,
  GetLogEventsCommand,
  ResourceNotFoundException,
} from "@aws-sdk/client-cloudwatch-logs";
import { truncate } from "../../core/execution.ts";
import type { PodLogs } from "../../core/ports.ts";
import { podLogStream } from "./ecs-pods.ts";

/** A pod's log from its container's stream in its pool's log group (the awslogs driver writes it). */
export class CloudWatchPodLogs implements PodLogs {
  constructor(
    private readonly logs: CloudWatchLogsClient,
    /** Pool name -> its log group. */
    private readonly groups: Record<string, string>,
  ) {}

  async read(pool: string, containerId: string, maxBytes: number): Promise<string> {
    let text = "";
    let token: string | undefined;
    // Page forward until a page brings nothing new (GetLogEvents repeats its last token) or the cap.
    for (;;) {
      const page = await this.page(pool, containerId, { startFromHead: true, nextToken: token });
      if (!page) return text;
      text += page.lines;
      if (Buffer.byteLength(text) > maxBytes) return truncate(text, maxBytes);
      if (page.nextForwardToken === token || page.lines === "") return text;
      token = page.nextForwardToken;
    }
  }

  async tail(pool: string, containerId: string, maxBytes: number): Promise<string> {
    // Without a token and startFromHead false, GetLogEvents answers the latest events.
    const page = await this.page(pool, containerId, { startFromHead: false, limit: 200 });
    return page ? truncate(page.lines, maxBytes, "end") : "";
  }

  /** One page of events as lines; undefined when the stream does not exist (yet). */
  private async page(
    pool: string,
    containerId: string,
    options: { startFromHead: boolean; nextToken?: string; limit?: number },
  ) {
    const logGroupName = this.groups[pool];
    if (!logGroupName) return undefined;
    try {
      const out = await this.logs.send(
        new GetLogEventsCommand({ logGroupName, logStreamName: podLogStream(containerId), ...options }),
      );
      const lines = (out.events ?? []).map((e) => `${e.message ?? ""}\n`).join("");
      return { lines, nextForwardToken: out.nextForwardToken };
    } catch (err) {
      if (err instanceof ResourceNotFoundException) return undefined;
      throw err;
    }
  }
}
