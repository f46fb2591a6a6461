import { randomUUID } from "node:crypto";
import { MemoryBlobStore } from "../../adapters/memory/memory-blobs.ts";
import { MemoryPoolQueue } from "../../adapters/memory/memory-queue.ts";
import { describeBlobContract } from "../contract/blobs.contract.ts";
import { describeQueueContract } from "../contract/queue.contract.ts";

describeQueueContract("MemoryPoolQueue", async () => ({
  queue: new MemoryPoolQueue(Date.now, 2),
  pool: randomUUID(),
  visibilitySeconds: 2,
}));

describeBlobContract("MemoryBlobStore", async () => new MemoryBlobStore());
