import type { Deps } from "../../core/deps.ts";

/**
 * ECS task scale-in protection, through the ECS agent's endpoint (`ECS_AGENT_URI`, which ECS injects on
 * Fargate): while a worker holds jobs, neither a scale-in nor a deployment stops its task; once its last
 * job ends it gives the protection up. Without the endpoint (the local stack) it does nothing.
 * See https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-scale-in-protection-endpoint.html
 */
export interface ScaleInProtection {
  /** A job started that may run until `until`: keep the task protected at least that long. */
  protectUntil(until: Date): Promise<void>;
  /** No job is running any more: the task may be stopped. */
  release(): Promise<void>;
}

/** The longest protection ECS grants, in minutes. */
const MAX_MINUTES = 2880;

export function scaleInProtection(
  agentUri: string | undefined,
  deps: Pick<Deps, "clock" | "log">,
): ScaleInProtection {
  if (!agentUri) return { protectUntil: async () => undefined, release: async () => undefined };
  /** Epoch ms until which the agent last confirmed protection; 0 when none. */
  let protectedUntil = 0;
  const put = async (body: { ProtectionEnabled: boolean; ExpiresInMinutes?: number }) => {
    const res = await fetch(`${agentUri}/task-protection/v1/state`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = (await res.json().catch(() => ({}))) as { failure?: unknown };
    if (!res.ok || answer.failure) throw new Error(`${res.status} ${JSON.stringify(answer)}`);
  };
  // One change at a time, decided in the order asked, so that a release never overtakes a protection.
  let queue: Promise<void> = Promise.resolve();
  const enqueue = (change: () => Promise<void>) => {
    queue = queue.then(change).catch((err: unknown) =>
      // The jobs run either way; a task stopped unprotected drains and hands its runs back.
      deps.log.warn("scale-in protection not changed", { error: String(err) }),
    );
    return queue;
  };
  return {
    protectUntil: (until) =>
      enqueue(async () => {
        if (until.getTime() <= protectedUntil) return;
        const now = deps.clock.now().getTime();
        const minutes = Math.min(MAX_MINUTES, Math.max(1, Math.ceil((until.getTime() - now) / 60_000)));
        await put({ ProtectionEnabled: true, ExpiresInMinutes: minutes });
        protectedUntil = now + minutes * 60_000;
      }),
    release: () =>
      enqueue(async () => {
        if (protectedUntil === 0) return;
        await put({ ProtectionEnabled: false });
        protectedUntil = 0;
      }),
  };
}
