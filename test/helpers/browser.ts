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

/** A page opened from a local file, with what went wrong while it loaded. */
export interface OpenedPage {
  readonly page: import('playwright-core').Page;
  /** Console errors and warnings, and uncaught exceptions. */
  readonly problems: string[];
  /** Every request other than the file itself (a self-contained page makes none). */
  readonly requests: string[];
}

/** Opens a local HTML file in a new page, recording console problems and requests. */
export async function openLocalPage(browser: Browser, file: string): Promise<OpenedPage> {
  const { pathToFileURL } = await import('node:url');
  const url = pathToFileURL(file).href;
  const page = await browser.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('request', (r) => {
    if (r.url() !== url) requests.push(r.url());
  });
  await page.goto(url);
  return { page, problems, requests };
}
