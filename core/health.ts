import type { Deps } from "./deps.ts";

export interface HealthReport {
  status: "healthy" | "degraded";
  version: string;
  components: { name: string; status: "up" | "down" }[];
}

/** Pings each backing service; any one down makes the whole degraded. */
export async function health(
  deps: Pick<Deps, "tasks" | "queue" | "blobs">,
  version: string,
): Promise<HealthReport> {
  const probes = { dynamodb: deps.tasks, sqs: deps.queue, s3: deps.blobs };
  const components = await Promise.all(
    Object.entries(probes).map(async ([name, port]) => ({
      name,
      status: await port.ping().then(
        () => "up" as const,
        () => "down" as const,
      ),
    })),
  );
  return { status: components.every((c) => c.status === "up") ? "healthy" : "degraded", version, components };
}
