/**
 * `nixcache report` end to end: a file:// cache with signed and unsigned paths, a closure hole
 * and old objects; `--json` counts what the cache holds; the HTML page opens in a real headless
 * Chromium without console errors or requests, and shows the same totals as `--json`.
 */
import { mkdirSync, mkdtempSync, readdirSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeSampleStore, type SampleStore } from '../../fixtures/sample-store.js';
import { describeWithBrowser, launchChromium } from '../helpers/browser.js';
import { addPlainPath, runCli } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'nixcache-report-cli-'));
const cacheDir = join(work, 'cache');
const cache = `file://${cacheDir}`;
let sample: SampleStore;
let publicKey: string;
let lonely: string;

function sizes(dir: string): { count: number; bytes: number } {
  const files = readdirSync(dir);
  return { count: files.length, bytes: files.reduce((n, f) => n + statSync(join(dir, f)).size, 0) };
}

beforeAll(async () => {
  mkdirSync(join(work, 'store'));
  sample = await makeSampleStore(join(work, 'store'));
  const keyFile = join(work, 'report.secret');
  const gen = await runCli(['key', 'generate', '--name', 'report-1', '--out', keyFile]);
  publicKey = gen.stdout.trim();
  const push = await runCli([
    'push',
    '--to',
    cache,
    '--key-file',
    keyFile,
    '--store-dir',
    join(work, 'store'),
    sample.hello,
  ]);
  expect(push.code, push.stderr).toBe(0);
  // An unsigned path, and a hole: the greeting data's narinfo disappears under the library.
  lonely = await addPlainPath(join(work, 'store'), 7, 'lonely', { 'a.txt': 'alone\n' });
  const unsigned = await runCli(['push', '--to', cache, '--store-dir', join(work, 'store'), lonely]);
  expect(unsigned.code, unsigned.stderr).toBe(0);
  unlinkSync(join(cacheDir, `${sample.data.slice(11, 43)}.narinfo`));
  // Everything but the lonely path is 40 days old.
  const old = new Date(Date.now() - 40 * 86_400_000);
  for (const f of readdirSync(cacheDir))
    if (!f.startsWith(lonely.slice(11, 43))) utimesSync(join(cacheDir, f), old, old);
  for (const f of readdirSync(join(cacheDir, 'nar'))) utimesSync(join(cacheDir, 'nar', f), old, old);
});

let json: {
  totals: { narinfos: number; narFiles: number; fileBytes: number; objects: number };
  closureHoles: { count: number; examples: { path: string; missing: string }[] };
  unsigned: { key: string; count: number; examples: string[] };
  largestClosures: { path: string; closurePaths: number }[];
  ageHistogram: { bucket: string; objects: number }[];
  byCompression: { method: string; narinfos: number }[];
  gc: { deleted: { kind: string; objects: number }[] };
};

it('counts what the cache holds, as --json', async () => {
  const r = await runCli([
    'report',
    '--store',
    cache,
    '--json',
    '-k',
    publicKey,
    '--keep-days',
    '7',
    '--grace',
    '1h',
  ]);
  expect(r.code, r.stderr).toBe(0);
  json = JSON.parse(r.stdout);
  const nars = sizes(join(cacheDir, 'nar'));
  expect(json.totals.narinfos).toBe(3);
  expect(json.totals.narFiles).toBe(nars.count);
  expect(json.totals.fileBytes).toBe(nars.bytes);
  expect(json.closureHoles.count).toBe(1);
  expect(json.closureHoles.examples[0]).toEqual({ path: sample.lib, missing: sample.data });
  expect(json.unsigned).toEqual({ key: 'report-1', count: 1, examples: [lonely] });
  expect(json.largestClosures.map((c) => c.path).sort()).toEqual([sample.hello, lonely].sort());
  expect(json.largestClosures.find((c) => c.path === sample.hello)!.closurePaths).toBe(2);
  expect(json.byCompression).toEqual([expect.objectContaining({ method: 'xz', narinfos: 3 })]);
  expect(json.ageHistogram.find((a) => a.bucket === '30-90 days')!.objects).toBeGreaterThan(0);
  expect(json.ageHistogram.reduce((n, a) => n + a.objects, 0)).toBe(json.totals.objects);
  // gc keeps what was pushed in the last 7 days (the lonely path) and deletes the old rest.
  expect(json.gc.deleted.find((d) => d.kind === 'narinfo')!.objects).toBe(2);
});

it('refuses to run without --out or --json', async () => {
  const r = await runCli(['report', '--store', cache]);
  expect(r.code).toBe(2);
});

describeWithBrowser('the report page', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('opens without errors and shows the totals of --json', async () => {
    const out = join(work, 'report.html');
    const r = await runCli([
      'report',
      '--store',
      cache,
      '--out',
      out,
      '-k',
      publicKey,
      '--keep-days',
      '7',
      '--grace',
      '1h',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const page = await browser.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('request', (req) => {
      if (req.url() !== pathToFileURL(out).href) requests.push(req.url());
    });
    await page.goto(pathToFileURL(out).href);
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);
    const total = async (name: string) => (await page.textContent(`[data-total="${name}"] b`))?.trim();
    expect(await total('narinfos')).toBe(String(json.totals.narinfos));
    expect(await total('NAR files')).toBe(String(json.totals.narFiles));
    expect(await total('closure holes')).toBe(String(json.closureHoles.count));
    expect(await total('not signed by report-1')).toBe(String(json.unsigned.count));
    expect(await page.locator('#chart-closures svg rect').count()).toBe(json.largestClosures.length);
    expect(await page.locator('#chart-age svg rect').count()).toBe(json.ageHistogram.length);
    expect(await page.locator('#chart-compression svg rect').count()).toBe(json.byCompression.length);
    await page.screenshot({ path: join(work, 'report.png'), fullPage: true });
    await page.close();
  });
});
