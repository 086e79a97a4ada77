/**
 * `restorePath` refuses a target whose last component is `.`, `..` or empty, as
 * `nix-store --restore` does (it fails creating `out/.`); resolving the name first would
 * restore `out/.` into `out` (issue 10 item 12).
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restorePath } from '../../src/nar/node/index.js';
import { fileTokens, rawNar } from './helpers.js';

let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(join(tmpdir(), 'nixcache-restore-target-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('restore target', () => {
  it('refuses targets ending in ., .. or / and creates nothing', async () => {
    const targets = ['out/.', 'out/..', 'out/', 'a/b/.', '.', '..'].map((n) => `${tmp}/${n}`);
    for (const target of [...targets, '']) {
      const nar = rawNar('nix-archive-1', ...fileTokens('hello'));
      const err = await restorePath(nar, target).catch((e: unknown) => e);
      expect(err, target).toMatchObject({ code: 'BAD_ARGUMENT' });
      expect((err as Error).message).toMatch(/the target must end in the name of a new file or directory/);
    }
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('a plain new name still works', async () => {
    const target = join(tmp, 'new');
    await restorePath(rawNar('nix-archive-1', ...fileTokens('hello')), target);
    expect(fs.readFileSync(target, 'utf8')).toBe('hello');
  });
});
