import { randomUUID } from "node:crypto";
import type { PoolQueue, QueueMessage } from "../../core/ports.ts";

interface Stored {
  body: string;
  groupId: string;
  receiptHandle?: string;
  visibleAt: number;
}

/**
 * An in-memory FIFO queue per pool with SQS FIFO's rules: a dedup id seen in the last five minutes is
 * accepted and dropped; a group's messages come in the order sent, and none while another of the group
 * is in flight; a received message is hidden for the visibility timeout unless deleted.
 */
export class MemoryPoolQueue implements PoolQueue {
  private readonly queues = new Map<string, Stored[]>();
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly visibilitySeconds = 30,
  ) {}

  async ping(): Promise<void> {}

  /** None: this fake has no receive limit, so no message of it ever goes to a dead-letter queue. */
  async deadLetters(_pool: string): Promise<{ count: number; oldestAgeSeconds?: number }> {
    return { count: 0 };
  }

  /** Messages waiting (visible or in flight) on a pool's queue. */
  depth(pool: string): number {
    return this.queues.get(pool)?.length ?? 0;
  }

  /** Bodies on the queue, oldest first. */
  bodies(pool: string): string[] {
    return (this.queues.get(pool) ?? []).map((m) => m.body);
  }

  async send(pool: string, message: { body: string; dedupId: string; groupId: string }): Promise<void> {
    const dedupKey = `${pool}#${message.dedupId}`;
    const seenAt = this.seen.get(dedupKey);
    if (seenAt !== undefined && this.now() - seenAt < 5 * 60_000) return;
    this.seen.set(dedupKey, this.now());
    const queue = this.queues.get(pool) ?? [];
    queue.push({ body: message.body, groupId: message.groupId, visibleAt: 0 });
    this.queues.set(pool, queue);
  }

  /** Long-polls like SQS: waits up to `waitSeconds` of real time for a message. */
  async receive(pool: string, max: number, waitSeconds = 0): Promise<QueueMessage[]> {
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      const messages = this.take(pool, max);
      if (messages.length > 0 || Date.now() >= deadline) return messages;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private take(pool: string, max: number): QueueMessage[] {
    const out: QueueMessage[] = [];
    /** Groups with a message in flight from an earlier receive: the rest of the group waits. */
    const held = new Set<string>();
    const now = this.now();
    for (const message of this.queues.get(pool) ?? []) {
      if (out.length >= max) break;
      if (message.visibleAt > now) held.add(message.groupId);
      if (held.has(message.groupId)) continue;
      message.receiptHandle = randomUUID();
      message.visibleAt = now + this.visibilitySeconds * 1000;
      out.push({ receiptHandle: message.receiptHandle, body: message.body });
    }
    return out;
  }

  async delete(pool: string, receiptHandles: string[]): Promise<void> {
    const queue = this.queues.get(pool) ?? [];
    this.queues.set(
      pool,
      queue.filter((m) => m.receiptHandle === undefined || !receiptHandles.includes(m.receiptHandle)),
    );
  }

  async extendVisibility(pool: string, receiptHandle: string, seconds: number): Promise<void> {
    const message = this.queues.get(pool)?.find((m) => m.receiptHandle === receiptHandle);
    if (message) message.visibleAt = this.now() + seconds * 1000;
  }
}
