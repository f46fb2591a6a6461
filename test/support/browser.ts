import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

/** Where the machine's Chromium is (CI installs Debian's `chromium`); CHROMIUM_PATH overrides it. */
const CANDIDATES = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"];

/** A real headless Chromium, for tests of what runs in a browser. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = CANDIDATES.find((path) => path && existsSync(path));
  if (!executablePath) {
    throw new Error("no Chromium found: apt-get install chromium, or set CHROMIUM_PATH to a Chromium binary");
  }
  return chromium.launch({ executablePath, args: ["--no-sandbox"] });
}
