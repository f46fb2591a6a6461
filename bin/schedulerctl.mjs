#!/usr/bin/env node
// schedulerctl: the Switchyard command-line client (cli/). Runs the TypeScript sources through tsx.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
