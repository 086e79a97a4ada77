/**
 * The report page in a real headless Chromium: it renders without console errors or network
 * requests, draws one bar per data row, shows the totals it was given, and markup or script in a
 * hostile cache's paths and key names stays text.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CacheReport } from '../../src/cache/report.js';
import { escapeHtml, renderReportHtml } from '../../src/cli/report-html.js';
import { describeWithBrowser, launchChromium, openLocalPage } from '../helpers/browser.js';

const evil =
  '/nix/store/00000000000000000000000000000000-<img src=x onerror=alert(1)></script><script>window.pwned=1</script>\u001b[31m';

const report: CacheReport = {
  store: 'file:///srv/cache',
  generatedAt: '2026-12-03T10:00:00.000Z',
  totals: {
    narinfos: 3,
    narFiles: 2,
    fileBytes: 3072,
    narBytes: 9000,
    listings: 1,
    objects: 7,
    objectBytes: 5000,
  },
  byCompression: [
    { method: 'xz', narinfos: 2, fileBytes: 2048, narBytes: 6000 },
    { method: 'zstd', narinfos: 1, fileBytes: 1024, narBytes: 3000 },
  ],
  largestClosures: [
    { path: evil, closurePaths: 3, closureBytes: 9000 },
    { path: '/nix/store/11111111111111111111111111111111-hello', closurePaths: 1, closureBytes: 3000 },
  ],
  ageHistogram: [
    { bucket: 'under 1 day', objects: 4, bytes: 4000 },
    { bucket: '1-7 days', objects: 3, bytes: 1000 },
  ],
  unsigned: { key: 'old-key-1<b>', count: 1, examples: [evil] },
  closureHoles: {
    count: 1,
    examples: [{ path: evil, missing: '/nix/store/22222222222222222222222222222222-gone' }],
  },
  gc: {
    options: '--keep-days 30 --grace 1d',
    deleted: [{ kind: 'narinfo', objects: 1, bytes: 300 }],
    kept: [{ kind: 'narinfo', objects: 2, bytes: 600 }],
  },
};

it('escapes markup and control characters', () => {
  expect(escapeHtml('<a href="x">&\u001b</a>')).toBe('&lt;a href=&quot;x&quot;&gt;&amp;\ufffd&lt;/a&gt;');
  const html = renderReportHtml(report);
  expect(html).not.toContain('<img src=x');
  expect(html).not.toContain('<script>window.pwned');
  expect(html).not.toContain('\u001b');
  expect(html).not.toMatch(/(src|href)=["']?https?:/);
});

describeWithBrowser('the report page in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('renders without errors or requests, with its charts and totals', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nixcache-report-')), 'report.html');
    writeFileSync(file, renderReportHtml(report));
    const { page, problems, requests } = await openLocalPage(browser, file);
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    for (const [id, rows] of [
      ['chart-compression', 2],
      ['chart-closures', 2],
      ['chart-age', 2],
      ['chart-gc', 1],
    ] as const) {
      expect(await page.getAttribute(`#${id}`, 'data-drawn')).toBe(String(rows));
      expect(await page.locator(`#${id} svg rect`).count()).toBe(rows);
    }
    expect(await page.textContent('[data-total="narinfos"] b')).toBe('3');
    expect(await page.textContent('body')).toContain('<img src=x onerror=alert(1)>');
    await page.screenshot({ path: file.replace(/\.html$/, '.png'), fullPage: true });
    await page.close();
  });
});
