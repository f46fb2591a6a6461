import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import type { WebhookRequest, WebhookSender } from "../../core/ports.ts";
import type { CallbackTarget } from "../../core/ssrf.ts";

/** Webhooks over Node's HTTP clients: a fresh connection to a vetted address each time, no redirects. */
export const nodeWebhookSender: WebhookSender = { post };

/** One POST; resolves with the answer's status (the body is not read), rejects on error or timeout. */
function post(target: CallbackTarget, { body, headers, timeoutMs }: WebhookRequest): Promise<number> {
  const { url } = target;
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method: "POST",
        protocol: url.protocol,
        hostname: target.hostname,
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        lookup: pinnedLookup(target.addresses),
        // A fresh connection each time: a pooled socket could have been opened to another address.
        agent: false,
        timeout: timeoutMs,
      },
      (res: IncomingMessage) => {
        clearTimeout(deadline);
        resolve(res.statusCode ?? 0);
        res.destroy();
      },
    );
    // `timeout` above is idle time; this bounds the whole exchange.
    const deadline = setTimeout(
      () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on("error", (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    req.end(body);
  });
}

/** Answers the HTTP client's lookups with the vetted addresses only: no second resolution can differ. */
function pinnedLookup(addresses: CallbackTarget["addresses"]): LookupFunction {
  return (_hostname, options, callback) => {
    const family = typeof options.family === "number" ? options.family : 0;
    const usable = addresses.filter((a) => family === 0 || a.family === family);
    const [first] = usable;
    if (!first) {
      const err = Object.assign(new Error(`no IPv${family} address was vetted`), { code: "ENOTFOUND" });
      callback(err, "", 0);
    } else if (options.all) {
      (callback as unknown as (err: null, all: typeof usable) => void)(null, usable);
    } else {
      callback(null, first.address, first.family);
    }
  };
}
