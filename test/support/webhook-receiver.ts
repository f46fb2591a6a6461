import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedCall {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, exactly as received (signatures are over these bytes). */
  body: string;
}

/** What the receiver answers to its `n`-th call (from 1): a status, or `hang` to never answer. */
export type Answer = number | { status: number; headers?: Record<string, string> } | "hang";

export interface WebhookReceiver {
  /** `http://<host>:<port>` */
  url: string;
  port: number;
  calls: ReceivedCall[];
  close(): Promise<void>;
}

/** A webhook receiver on a loopback address (node:http) that records every call. */
export async function startReceiver(
  answer: (call: ReceivedCall, n: number) => Answer = () => 200,
  host = "127.0.0.1",
): Promise<WebhookReceiver> {
  const calls: ReceivedCall[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const call = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
    };
    calls.push(call);
    const reply = answer(call, calls.length);
    if (reply === "hang") {
      hanging.add(res);
      return;
    }
    const { status, headers } = typeof reply === "number" ? { status: reply, headers: {} } : reply;
    res.writeHead(status, headers).end("ok");
  });
  await new Promise<void>((done) => server.listen(0, host, done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    calls,
    close: () =>
      new Promise<void>((done) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
