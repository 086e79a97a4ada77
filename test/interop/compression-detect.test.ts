/**
 * Issue 10 item 9: a narinfo without `Compression:` (or with an empty or wrong one) over an xz NAR.
 * Nix 2.8 reads the field as bzip2 but decodes through libarchive, which detects the format, so it
 * substitutes such a cache; nixcache must verify it as ok too, detecting the format from the magic
 * bytes and reporting the discrepancy as a warning.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { verifyCache } from '../../src/cache/index.js';
import { openStore } from '../../src/store/index.js';
import type { NarWarning } from '../../src/store/nar-compression.js';
import { describeWithNix } from '../helpers/env.js';
import {
  buildFixtureClosure,
  type FixtureClosure,
  nix,
  nixSigningKey,
  nixSubstitute,
} from '../helpers/nix.js';

describeWithNix('narinfo without Compression, with nix', () => {
  let work: string;
  let closure: FixtureClosure;
  let pub: string;
  let dir: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nixcache-detect-'));
    closure = buildFixtureClosure();
    const signing = nixSigningKey(work, 'detect');
    pub = signing.publicKey;
    nix(['nix', 'store', 'sign', '--key-file', signing.keyFile, ...closure.metadata.keys()]);
    dir = join(work, 'cache');
    nix(['nix', 'copy', '--to', `file://${dir}?compression=xz`, closure.app]);
    // Signatures do not cover Compression: drop it from one narinfo, empty it in another, and
    // name the wrong method in the third.
    const edits = [
      (t: string) => t.replace(/^Compression: xz\n/m, ''),
      (t: string) => t.replace(/^Compression: xz$/m, 'Compression: '),
      (t: string) => t.replace(/^Compression: xz$/m, 'Compression: bzip2'),
    ];
    const narinfos = readdirSync(dir).filter((f) => f.endsWith('.narinfo'));
    expect(narinfos).toHaveLength(3);
    narinfos.forEach((f, i) => {
      const path = join(dir, f);
      const before = readFileSync(path, 'utf8');
      const after = edits[i]!(before);
      expect(after).not.toBe(before);
      writeFileSync(path, after);
    });
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('Nix 2.8 substitutes from it', async () => {
    const r = await nixSubstitute(`file://${dir}`, join(work, 'fresh'), closure.app, pub);
    expect(r.status, r.stderr).toBe(0);
  });

  it('nixcache verifies it ok, detecting xz from the data, and warns', async () => {
    const store = await openStore(`file://${dir}`);
    const { summary } = await verifyCache(store, { trustedKeys: [pub] });
    expect(summary).toMatchObject({ total: 3, ok: 3 });
    const warnings: NarWarning[] = [];
    for (const path of closure.metadata.keys()) {
      const info = (await store.getNarInfo(path))!;
      for await (const _ of store.getNar(info, { onWarning: (w) => warnings.push(w) })) {
        // drain
      }
    }
    expect(warnings.map((w) => w.code).sort()).toEqual([
      'compression-mismatch',
      'compression-missing',
      'compression-missing',
    ]);
    for (const w of warnings) {
      expect(w.detected).toBe('xz');
      expect(w.message).toContain(w.url);
    }
  });
});
