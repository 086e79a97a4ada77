/**
 * A real headless browser for tests of the HTML nixcache writes: Debian's Chromium driven by
 * playwright-core (Playwright's own browser download cannot work without network). Suites skip
 * with a visible reason where no Chromium is installed, and fail under CI=true.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { describe } from 'vitest';
import { inCI } from './env.js';

const CANDIDATES = [process.env.NIXCACHE_TEST_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** The Chromium executable, if one is installed. */
export const chromiumPath = CANDIDATES.find((p): p is string => !!p && existsSync(p));

/** `describe` for suites that need a browser. */
export const describeWithBrowser: typeof describe = chromiumPath
  ? describe
  : inCI
    ? (((name: string) =>
        describe(name, () => {
          throw new Error('Chromium is required under CI=true but is missing (apt-get install chromium)');
        })) as unknown as typeof describe)
    : (() => {
        console.warn(
          '[nixcache tests] skipping: no Chromium (apt-get install chromium) for the browser tests',
        );
        return describe.skip as unknown as typeof describe;
      })();

/** Starts headless Chromium (a fresh temporary profile) with no background network traffic. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: chromiumPath!,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
