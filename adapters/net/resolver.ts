import { lookup } from "node:dns/promises";
import type { Resolver } from "../../core/ports.ts";

/** The system resolver: every address, in the order it answers. */
export const systemResolver: Resolver = (hostname) => lookup(hostname, { all: true, verbatim: true });
