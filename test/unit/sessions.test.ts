import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decodeSession, encodeSession, type SavedSession } from "../../containers/worker/sessions.ts";

const SAVED: SavedSession = {
  tool: "claude",
  run_id: "r-1",
  occurrence: 1,
  session_id: "s-1",
  ended: "timed out after 600 s",
  files: [{ path: "-tmp-work/s-1.jsonl", content: new Uint8Array(Buffer.from('{"type":"user"}\n')) }],
};

describe("a saved session", () => {
  it("reads back as it was saved", () => {
    expect(decodeSession(encodeSession(SAVED))).toEqual(SAVED);
  });

  it("is passed over when it is not one: junk, another shape, or a path out of the session dir", () => {
    const stored = (value: unknown) => new Uint8Array(gzipSync(JSON.stringify(value)));
    expect(decodeSession(new Uint8Array([1, 2, 3]))).toBeUndefined();
    expect(decodeSession(stored({ ...SAVED, files: "nope" }))).toBeUndefined();
    const escaping = { ...SAVED, files: [{ path: "../../.ssh/authorized_keys", data: "eA==" }] };
    expect(decodeSession(stored(escaping))).toBeUndefined();
  });
});
