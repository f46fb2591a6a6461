import type { BlobInfo, BlobStore } from "../../core/ports.ts";

export class MemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<string, Uint8Array>();

  async ping(): Promise<void> {}

  async put(key: string, body: string | Uint8Array): Promise<void> {
    this.blobs.set(key, typeof body === "string" ? new TextEncoder().encode(body) : body);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.blobs.get(key);
  }

  /** Objects in memory have no URL: self-hosted workers need a store they can reach over HTTP. */
  async url(key: string): Promise<string> {
    throw new Error(`${key}: objects in memory have no URL`);
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    return [...this.blobs.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, body]) => ({ key, size: body.byteLength }));
  }
}
