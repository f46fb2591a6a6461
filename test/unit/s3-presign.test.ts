import { S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { S3_CLIENT_SETTINGS, S3BlobStore } from "../../adapters/aws/s3-blobs.ts";

const client = (settings = {}) =>
  new S3Client({
    region: "eu-west-1",
    credentials: { accessKeyId: "AKIA", secretAccessKey: "secret" },
    ...settings,
  });

describe("presigned URLs of the blob store", () => {
  it("sign a PUT that S3 takes whatever its body: no checksum of the empty body signed at presign time", async () => {
    const url = new URL(
      await new S3BlobStore(client(S3_CLIENT_SETTINGS), "bucket").url(
        "logs/a b.log",
        "PUT",
        900,
        "text/plain",
      ),
    );
    expect([url.host, url.pathname]).toEqual(["bucket.s3.eu-west-1.amazonaws.com", "/logs/a%20b.log"]);
    expect(url.searchParams.get("X-Amz-Expires")).toBe("900");
    expect([...url.searchParams.keys()].filter((k) => k.toLowerCase().includes("checksum"))).toEqual([]);
    // The SDK's default would sign the CRC32 of an empty body into it, and S3 would refuse every upload.
    const byDefault = new URL(await new S3BlobStore(client(), "bucket").url("logs/x.log", "PUT", 900));
    expect(byDefault.searchParams.get("x-amz-checksum-crc32")).toBe("AAAAAA==");
  });

  it("sign a GET for the time asked", async () => {
    const url = new URL(
      await new S3BlobStore(client(S3_CLIENT_SETTINGS), "bucket").url("files/t/input/a.txt", "GET", 60),
    );
    expect(url.pathname).toBe("/files/t/input/a.txt");
    expect(url.searchParams.get("X-Amz-Expires")).toBe("60");
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
  });
});
