/** The PoolQueue contract (SQS FIFO's rules), run against the in-memory fake and against fauxqs. */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { PoolQueue, QueueMessage } from "../../core/ports.ts";

/** A fresh queue: the port, the pool it serves, and the queue's visibility timeout. */
export interface QueueUnderTest {
  queue: PoolQueue;
  pool: string;
  visibilitySeconds: number;
}

const bodies = (messages: QueueMessage[]) => messages.map((m) => m.body);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function describeQueueContract(name: string, fresh: () => Promise<QueueUnderTest>) {
  describe(`${name} (PoolQueue contract)`, () => {
    const send = (
      q: QueueUnderTest,
      body: string,
      groupId: string = randomUUID(),
      dedupId: string = randomUUID(),
    ) => q.queue.send(q.pool, { body, dedupId, groupId });
    /** Receives until `count` messages came, or a receive came back empty (within the visibility timeout). */
    const receiveAll = async (q: QueueUnderTest, count: number) => {
      const got: QueueMessage[] = [];
      while (got.length < count) {
        const batch = await q.queue.receive(q.pool, count - got.length, 1);
        if (batch.length === 0) break;
        got.push(...batch);
      }
      return got;
    };

    it("keeps one message per deduplication id", async () => {
      const q = await fresh();
      // Queue-wide, whatever the group.
      await send(q, "first", "g1", "run-1");
      await send(q, "again", "g2", "run-1");
      await send(q, "second", "g3", "run-2");
      expect(bodies(await receiveAll(q, 3)).sort()).toEqual(["first", "second"]);
    });

    it("delivers a group's messages in the order they were sent", async () => {
      const q = await fresh();
      for (const body of ["a1", "a2", "a3"]) await send(q, body, "a");
      const got = [];
      for (;;) {
        const [message] = await q.queue.receive(q.pool, 1, 1);
        if (!message) break;
        got.push(message.body);
        await q.queue.delete(q.pool, [message.receiptHandle]);
      }
      expect(got).toEqual(["a1", "a2", "a3"]);
    });

    it("holds back the rest of a group while one of its messages is in flight; other groups flow", async () => {
      const q = await fresh();
      await send(q, "a1", "a");
      await send(q, "a2", "a");
      await send(q, "b1", "b");
      const [first] = await q.queue.receive(q.pool, 1, 1);
      expect(first?.body).toBe("a1");
      expect(bodies(await receiveAll(q, 2))).toEqual(["b1"]);
      await q.queue.delete(q.pool, [first?.receiptHandle ?? ""]);
      expect(bodies(await receiveAll(q, 1))).toEqual(["a2"]);
    });

    it("hides a received message for the visibility timeout, then delivers it again", async () => {
      const q = await fresh();
      await send(q, "m");
      const [first] = await q.queue.receive(q.pool, 1, 1);
      expect(first?.body).toBe("m");
      expect(await q.queue.receive(q.pool, 1, 0)).toEqual([]);
      await sleep(q.visibilitySeconds * 1000 + 500);
      const again = await receiveAll(q, 1);
      expect(bodies(again)).toEqual(["m"]);
      expect(again[0]?.receiptHandle).not.toBe(first?.receiptHandle);
    });

    it("keeps a message hidden for as long as its visibility is extended", async () => {
      const q = await fresh();
      await send(q, "m");
      const [message] = await q.queue.receive(q.pool, 1, 1);
      await q.queue.extendVisibility(q.pool, message?.receiptHandle ?? "", q.visibilitySeconds + 3);
      await sleep(q.visibilitySeconds * 1000 + 500);
      expect(await q.queue.receive(q.pool, 1, 0)).toEqual([]);
    });

    it("never delivers a deleted message again", async () => {
      const q = await fresh();
      await send(q, "m");
      const [message] = await q.queue.receive(q.pool, 1, 1);
      await q.queue.delete(q.pool, [message?.receiptHandle ?? ""]);
      await sleep(q.visibilitySeconds * 1000 + 500);
      expect(await q.queue.receive(q.pool, 1, 0)).toEqual([]);
    });

    it("deletes many received messages at once, past one batch, and only those", async () => {
      const q = await fresh();
      for (let i = 0; i < 13; i++) await send(q, `m${i}`, `g${i}`, `run-${i}`);
      const received = await receiveAll(q, 13);
      expect(received).toHaveLength(13);
      const kept = received.find((m) => m.body === "m0");
      await q.queue.delete(
        q.pool,
        received.filter((m) => m !== kept).map((m) => m.receiptHandle),
      );
      await sleep(q.visibilitySeconds * 1000 + 500);
      expect(bodies(await receiveAll(q, 13))).toEqual(["m0"]);
    });
  });
}
