import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/** Answers a raw socket (one no handler serves) with an HTTP response, then closes it. */
export function answerSocket(socket: Duplex, status: number, body: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
