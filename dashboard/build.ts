/**
 * The dashboard's files, bundled with esbuild from this folder (Preact, the SDK), everything from npm and
 * nothing fetched at run time. The local server serves them at `/`.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { build } from "esbuild";

export interface DashboardFile {
  contentType: string;
  body: string | Uint8Array;
}

/** Where the dashboard is served: its page, and its assets under `dashboard/`. */
export const DASHBOARD_PATHS = {
  page: "/",
  script: "/dashboard/app.js",
  style: "/dashboard/app.css",
} as const;

/** The dashboard's files by path. */
export async function dashboardFiles(): Promise<Record<string, DashboardFile>> {
  const here = import.meta.dirname;
  const bundled = await build({
    entryPoints: [resolve(here, "app.tsx")],
    bundle: true,
    write: false,
    minify: true,
    format: "esm",
    target: "es2022",
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "none",
    logLevel: "silent",
  });
  const [script] = bundled.outputFiles;
  if (!script) throw new Error("the dashboard did not bundle");
  return {
    [DASHBOARD_PATHS.page]: {
      contentType: "text/html; charset=utf-8",
      body: await readFile(resolve(here, "index.html"), "utf8"),
    },
    [DASHBOARD_PATHS.script]: { contentType: "text/javascript; charset=utf-8", body: script.contents },
    [DASHBOARD_PATHS.style]: {
      contentType: "text/css; charset=utf-8",
      body: await readFile(resolve(here, "app.css"), "utf8"),
    },
  };
}
