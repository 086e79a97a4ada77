/**
 * `nixcache lint` (issue 14 item 2): a cache nixcache wrote is clean; a cache seeded with every
 * quirk has each one found exactly once, under its rule; `--fix` repairs the fixable ones with
 * every signature still valid (verify ok, real Nix substitutes everything) and reports the rest;
 * a second lint is clean once the operator has removed what cannot be fixed.
 */
import { copyFile, mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lintNarInfoText } from '../../src/cache/lint-rules.js';
import { pushPaths } from '../../src/cache/push.js';
import { formatHash } from '../../src/hash/hash.js';
import { parseNarInfo } from '../../src/narinfo/parse.js';
import { formatPublicKey, formatSecretKey, generateSecretKey } from '../../src/signing/keys.js';
import { openStore } from '../../src/store/index.js';
import { runCli } from '../cli/helpers.js';
import { hasNix } from '../helpers/env.js';
import { nixSubstitute } from '../helpers/nix.js';
import { hashPartOf, makeSourceStore, type SourceStore } from './helpers.js';

let work: string;
let source: SourceStore;
const k1 = generateSecretKey('lint-one-1');
const k2 = generateSecretKey('lint-two-1');
const pub = formatPublicKey(k1.publicKey);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nixcache-lint-'));
  source = await makeSourceStore(join(work, 'store'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Finding {
  rule: string;
  hashPart: string;
  storePath?: string;
  fixable: boolean;
  fixed: boolean;
}

async function lint(url: string, ...flags: string[]) {
  const r = await runCli(['lint', '--store', url, '--json', ...flags]);
  expect(r.stderr).toBe('');
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const summary = lines.at(-1);
  expect(summary).toHaveProperty('summary');
  return {
    code: r.code,
    findings: lines.slice(0, -1) as Finding[],
    summary: summary.summary,
    ok: summary.ok,
  };
}

const fakeHash = (c: string) => c.repeat(32);

describe('lint', () => {
  it('finds every seeded quirk exactly once; --fix keeps Nix and verify happy; then it is clean', async () => {
    const dir = join(work, 'cache');
    const url = `file://${dir}?compression=bzip2&write-nar-listing=1`;
    const store = await openStore(url);
    const init = await runCli(['init', '--store', url]);
    expect(init.code).toBe(0);
    const pushed = await pushPaths(store, [source.hello, source.note], {
      storeDir: source.dir,
      secretKeys: [k1, k2],
    });
    expect(pushed.failed).toEqual([]);

    // A cache nixcache wrote has nothing to report.
    const clean = await lint(url);
    expect(clean.findings).toEqual([]);
    expect(clean.summary.narinfos).toBe(4);
    expect(clean.code).toBe(0);

    const file = (p: string, ext = 'narinfo') => join(dir, `${hashPartOf(p)}.${ext}`);
    const originalHello = await readFile(file(source.hello), 'utf8');

    // hello: System line, NarHash in base16, URL after Compression; unknown-deriver; no listing.
    {
      const info = parseNarInfo(originalHello);
      let lines = originalHello.trimEnd().split('\n');
      lines = lines.map((l) =>
        l.startsWith('NarHash: ') ? `NarHash: ${formatHash(info.narHash, 'base16')}` : l,
      );
      const urlLine = lines.findIndex((l) => l.startsWith('URL: '));
      const [u] = lines.splice(urlLine, 1);
      lines.splice(urlLine + 1, 0, u!);
      lines = lines.filter((l) => !l.startsWith('Deriver: '));
      lines.splice(lines.findIndex((l) => l.startsWith('References: ')) + 1, 0, 'Deriver: unknown-deriver');
      lines.push('System: x86_64-linux');
      await writeFile(file(source.hello), `${lines.join('\n')}\n`);
      await unlink(file(source.hello, 'ls'));
    }
    // lib: no Compression line, no FileHash/FileSize, Sig lines reversed and one repeated.
    {
      const text = await readFile(file(source.lib), 'utf8');
      const lines = text.trimEnd().split('\n');
      const sigs = lines.filter((l) => l.startsWith('Sig: '));
      expect(sigs).toHaveLength(2);
      const rest = lines.filter((l) => !/^(Sig|Compression|FileHash|FileSize): /.test(l));
      // (in their place: before the CA line, which lib has)
      const ca = rest.findIndex((l) => l.startsWith('CA: '));
      rest.splice(ca < 0 ? rest.length : ca, 0, sigs[1]!, sigs[0]!, sigs[1]!);
      await writeFile(file(source.lib), `${rest.join('\n')}\n`);
    }
    // note: its NAR moved to a name that says xz while Compression says bzip2.
    {
      const info = parseNarInfo(await readFile(file(source.note), 'utf8'));
      const moved = info.url.replace(/\.bz2$/, '.xz');
      await rename(join(dir, info.url), join(dir, moved));
      const text = (await readFile(file(source.note), 'utf8')).replace(`URL: ${info.url}`, `URL: ${moved}`);
      await writeFile(file(source.note), text);
    }
    // A CA claim that does not compute: data's narinfo under another path.
    const forged = `/nix/store/${fakeHash('a')}-greeting-data-forged`;
    {
      const info = parseNarInfo(await readFile(file(source.data), 'utf8'));
      const text = (await readFile(file(source.data), 'utf8')).replace(info.storePath, forged);
      await writeFile(join(dir, `${fakeHash('a')}.narinfo`), text);
      await copyFile(file(source.data, 'ls'), join(dir, `${fakeHash('a')}.ls`));
    }
    // Another store directory than nix-cache-info's.
    const foreign = `/gnu/store/${fakeHash('b')}-hello-nixcache`;
    {
      const info = parseNarInfo(originalHello);
      await writeFile(join(dir, `${fakeHash('b')}.narinfo`), originalHello.replace(info.storePath, foreign));
    }

    const seeded = await lint(url);
    expect(seeded.code).toBe(1);
    const found = seeded.findings.map((f) => `${f.rule} ${f.storePath}`).sort();
    expect(found).toEqual(
      [
        `non-canonical ${source.hello}`,
        `unknown-deriver ${source.hello}`,
        `missing-listing ${source.hello}`,
        `unsorted-sigs ${source.lib}`,
        `missing-file-hash ${source.lib}`,
        `missing-compression ${source.lib}`,
        `url-extension ${source.note}`,
        `ca-mismatch ${forged}`,
        `store-dir-mismatch ${foreign}`,
      ].sort(),
    );
    expect(seeded.summary.rules).toEqual(Object.fromEntries(seeded.findings.map((f) => [f.rule, 1])));
    const hello = seeded.findings.find((f) => f.rule === 'non-canonical')!;
    expect((hello as unknown as { message: string }).message).toMatch(/System.*NarHash.*field order/);

    const fixed = await lint(url, '--fix');
    expect(fixed.code).toBe(1);
    expect(fixed.findings.map((f) => `${f.rule} ${f.storePath}`).sort()).toEqual(found);
    for (const f of fixed.findings) {
      expect(f.fixed).toBe(f.fixable);
      expect(f.fixable).toBe(!['ca-mismatch', 'store-dir-mismatch'].includes(f.rule));
    }
    expect(fixed.summary).toMatchObject({ findings: 9, fixed: 7, unfixed: 2 });

    // What could not be fixed is still there and still reported.
    const after = await lint(url);
    expect(after.findings.map((f) => f.rule).sort()).toEqual(['ca-mismatch', 'store-dir-mismatch']);
    // The operator removes those two; then the cache is clean.
    await unlink(join(dir, `${fakeHash('a')}.narinfo`));
    await unlink(join(dir, `${fakeHash('b')}.narinfo`));
    const second = await lint(url);
    expect(second.findings).toEqual([]);
    expect(second.code).toBe(0);

    // Every narinfo is now what Nix would write, and every signature still verifies.
    for (const p of [source.hello, source.lib, source.note, source.data]) {
      const text = await readFile(file(p), 'utf8');
      expect(lintNarInfoText(text, hashPartOf(p), '/nix/store').findings).toEqual([]);
    }
    const libInfo = parseNarInfo(await readFile(file(source.lib), 'utf8'));
    expect(libInfo.sigs).toHaveLength(2);
    const verify = await runCli(['verify', '--store', url, '-k', pub, '--all', '--json']);
    expect(verify.stdout).not.toMatch(/"status":"(?!ok)/);
    expect(verify.code).toBe(0);
    const helloNow = parseNarInfo(await readFile(file(source.hello), 'utf8'));
    expect(helloNow.sigs.map((s) => s.split(':')[0]).sort()).toEqual(['lint-one-1', 'lint-two-1']);

    if (hasNix) {
      let n = 0;
      for (const p of [source.hello, source.note]) {
        const r = await nixSubstitute(url, join(work, `fresh-${n++}`), p, pub);
        expect(r.stderr).not.toMatch(/error/);
        expect(r.status).toBe(0);
      }
    }
    await store.close();
  });

  it('settles a missing Compression by the data: an xz NAR at .nar.xz gets Compression: xz, not a copy', async () => {
    const dir = join(work, 'xz');
    const url = `file://${dir}?compression=xz`;
    expect((await runCli(['init', '--store', url])).code).toBe(0);
    const store = await openStore(url);
    expect((await pushPaths(store, [source.lib], { storeDir: source.dir, secretKeys: [k1] })).failed).toEqual(
      [],
    );
    await store.close();
    const narinfo = join(dir, `${hashPartOf(source.lib)}.narinfo`);
    const before = await readFile(narinfo, 'utf8');
    await writeFile(narinfo, before.replace(/^Compression: xz\n/m, ''));
    const seeded = await lint(url);
    expect(seeded.findings.map((f) => f.rule).sort()).toEqual(['missing-compression', 'url-extension']);
    const fixed = await lint(url, '--fix');
    expect(fixed.summary).toMatchObject({ findings: 2, fixed: 2, unfixed: 0 });
    expect(fixed.code).toBe(0);
    // Back to exactly what was pushed: the NAR was never copied.
    expect(await readFile(narinfo, 'utf8')).toBe(before);
    expect((await lint(url)).findings).toEqual([]);
    const verify = await runCli(['verify', '--store', url, '-k', pub, '--all']);
    expect(verify.code).toBe(0);
  });

  it('reports a narinfo that does not parse as unreadable, and --fix leaves it alone', async () => {
    const dir = join(work, 'garbage');
    const url = `file://${dir}?compression=none`;
    expect((await runCli(['init', '--store', url])).code).toBe(0);
    const garbage = join(dir, `${fakeHash('c')}.narinfo`);
    await writeFile(garbage, 'StorePath: nonsense\r\n');
    for (const flags of [[], ['--fix']]) {
      const r = await lint(url, ...flags);
      expect(r.code).toBe(1);
      expect(r.findings).toMatchObject([
        { rule: 'unreadable', hashPart: fakeHash('c'), fixable: false, fixed: false },
      ]);
    }
    expect(await readFile(garbage, 'utf8')).toBe('StorePath: nonsense\r\n');
  });

  it('prints one line per finding and a summary without --json', async () => {
    const dir = join(work, 'plain');
    const url = `file://${dir}?compression=none`;
    const key = join(work, 'k.secret');
    await writeFile(key, formatSecretKey(k1), { mode: 0o600 });
    expect((await runCli(['init', '--store', url])).code).toBe(0);
    expect(
      (await runCli(['push', '--to', url, '--store-dir', source.dir, '--secret-key-file', key, source.lib]))
        .code,
    ).toBe(0);
    const narinfo = join(dir, `${hashPartOf(source.lib)}.narinfo`);
    await writeFile(narinfo, `${await readFile(narinfo, 'utf8')}System: x86_64-linux\n`);
    const r = await runCli(['lint', '--store', url]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^non-canonical +\/nix\/store\/\S+-greeting-lib: .*unknown keys System/m);
    expect(r.stdout).toMatch(/linted 2 narinfos in .*: 1 findings\n$/);
  });
});
