import {
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { BlobInfo, BlobStore } from "../../core/ports.ts";

/**
 * How the S3 client of a blob store is made. A presigned PUT has no body when it is signed: with the SDK's
 * default (checksums whenever supported) it would carry the CRC32 of an empty body, and S3 would refuse
 * every upload to it.
 */
export const S3_CLIENT_SETTINGS = { requestChecksumCalculation: "WHEN_REQUIRED" } as const;

/** Logs and files in one S3 bucket. */
export class S3BlobStore implements BlobStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async ping(): Promise<void> {
    await this.s3.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async put(key: string, body: string | Uint8Array, contentType = "application/octet-stream"): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }),
    );
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
    } catch (err) {
      if (err instanceof NoSuchKey || (err as { name?: string }).name === "NoSuchKey") return undefined;
      throw err;
    }
  }

  url(key: string, method: "GET" | "PUT", seconds: number, contentType?: string): Promise<string> {
    const object = { Bucket: this.bucket, Key: key };
    const command =
      method === "GET"
        ? new GetObjectCommand(object)
        : new PutObjectCommand({ ...object, ContentType: contentType ?? "application/octet-stream" });
    return getSignedUrl(this.s3, command, { expiresIn: seconds });
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const blobs: BlobInfo[] = [];
    let token: string | undefined;
    do {
      const out = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of out.Contents ?? []) if (o.Key) blobs.push({ key: o.Key, size: o.Size ?? 0 });
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return blobs;
  }
}
