// Finding and launching Debian's Chromium for the browser tests (playwright-core drives it; no
// browser is ever downloaded). CI must not skip those tests: see requireBrowser.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";

/** The Chromium executable: $CHROMIUM_PATH, or Debian's package, or undefined. */
export const CHROMIUM = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => p && existsSync(p));

/** On CI (CI=true, or .ci/run's MOBILELLM_REQUIRE_BROWSER=1) a missing Chromium fails the tests instead of skipping them. */
export const REQUIRE_BROWSER = process.env.CI === "true" || process.env.CI === "1" || process.env.MOBILELLM_REQUIRE_BROWSER === "1";

export const NO_CHROMIUM = "no Chromium found (/usr/bin/chromium; set CHROMIUM_PATH, or `apt-get install -y chromium`)";

/** The launch flags: headless, no sandbox (root in a container), no GPU, no calls home. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/** Launch Chromium with a fresh user-data dir; dispose() closes it and removes the profile. */
export async function launchChromium(): Promise<{ context: BrowserContext; dispose(): Promise<void> }> {
  if (!CHROMIUM) throw new Error(NO_CHROMIUM);
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "mobilellm-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  return {
    context,
    dispose: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
