/** The BlobStore contract, run against the in-memory fake and against fauxqs's S3. */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { BlobStore } from "../../core/ports.ts";

export function describeBlobContract(name: string, store: () => Promise<BlobStore>) {
  describe(`${name} (BlobStore contract)`, () => {
    const text = (bytes: Uint8Array | undefined) => (bytes ? new TextDecoder().decode(bytes) : undefined);

    it("gives back the bytes it was given, text or binary", async () => {
      const blobs = await store();
      const prefix = randomUUID();
      await blobs.put(`${prefix}/log.txt`, "héllo\n", "text/plain; charset=utf-8");
      await blobs.put(`${prefix}/data.bin`, new Uint8Array([0, 1, 2, 255]));
      expect(text(await blobs.get(`${prefix}/log.txt`))).toBe("héllo\n");
      expect(await blobs.get(`${prefix}/data.bin`)).toEqual(new Uint8Array([0, 1, 2, 255]));
    });

    it("answers undefined for a key that holds nothing", async () => {
      const blobs = await store();
      expect(await blobs.get(`${randomUUID()}/none`)).toBeUndefined();
    });

    it("replaces what a key held", async () => {
      const blobs = await store();
      const key = `${randomUUID()}/out.md`;
      await blobs.put(key, "first");
      await blobs.put(key, "second");
      expect(text(await blobs.get(key))).toBe("second");
    });

    it("lists the keys under a prefix, in key order, with their sizes, and nothing else", async () => {
      const blobs = await store();
      const prefix = randomUUID();
      await blobs.put(`${prefix}/b/2.txt`, "22");
      await blobs.put(`${prefix}/a.txt`, "1");
      await blobs.put(`${prefix}-other/c.txt`, "333");
      expect(await blobs.list(`${prefix}/`)).toEqual([
        { key: `${prefix}/a.txt`, size: 1 },
        { key: `${prefix}/b/2.txt`, size: 2 },
      ]);
      expect(await blobs.list(`${randomUUID()}/`)).toEqual([]);
    });
  });
}
