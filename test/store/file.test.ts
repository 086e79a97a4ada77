import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { NixcacheError } from '../../src/errors.js';
import { FileBackend } from '../../src/store/file.js';
import { repoRoot } from '../helpers/env.js';
import { storeConformance } from './conformance.js';

function dirOf(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/\?.*$/, '');
}

storeConformance('file://', () => {
  const root = mkdtempSync(join(tmpdir(), 'nixcache-file-store-'));
  let n = 0;
  return {
    freshUrl: async () => `file://${root}/cache-${n++}`,
    canList: true,
    corrupt: async (url, key) => {
      const path = join(dirOf(url), key);
      const bytes = await readFile(path);
      bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
      await writeFile(path, bytes);
    },
    remove: async (url, key) => rm(join(dirOf(url), key)),
  };
});

describe('file:// conditional writes (etag + lock file)', () => {
  const root = mkdtempSync(join(tmpdir(), 'nixcache-file-cas-'));
  const text = (s: string) => new TextEncoder().encode(s);
  const opts = { contentType: 'text/x-nix-narinfo' };
  const leftovers = () => readdirSync(root).filter((n) => n.endsWith('.lock') || n.includes('.tmp.'));

  it('replaces an object whose etag matches, refuses one that changed, and leaves no lock or temporary file', async () => {
    const b = new FileBackend(root);
    const first = await b.put('a.narinfo', text('one'), opts);
    const second = await b.put('a.narinfo', text('two'), { ...opts, ifMatch: first.etag! });
    expect(readFileSync(join(root, 'a.narinfo'), 'utf8')).toBe('two');
    expect(second.etag).toBe((await b.head('a.narinfo'))!.etag);
    const stale = await b
      .put('a.narinfo', text('three'), { ...opts, ifMatch: first.etag! })
      .catch((e: NixcacheError) => e);
    expect((stale as NixcacheError).code).toBe('CONFLICT');
    expect(readFileSync(join(root, 'a.narinfo'), 'utf8')).toBe('two');
    // A conditional write of an absent object is refused too.
    const absent = await b.put('b.narinfo', text('x'), { ...opts, ifMatch: '"nope"' }).catch((e) => e);
    expect((absent as NixcacheError).code).toBe('CONFLICT');
    expect(existsSync(join(root, 'b.narinfo'))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('a new version that cannot be written whole leaves no lock behind', async () => {
    const b = new FileBackend(root);
    const first = await b.put('d.narinfo', text('one'), opts);
    // A child process whose files may not grow past 1 KiB (ulimit -f): writing the 8 KiB new
    // version into the lock file fails (EFBIG) after the lock file was created.
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const script = [
      `import { FileBackend } from ${JSON.stringify(join(repoRoot, 'src/store/file.ts'))};`,
      `const b = new FileBackend(${JSON.stringify(root)});`,
      `await b.put('d.narinfo', new Uint8Array(8192), { contentType: 'text/x-nix-narinfo', ifMatch: ${JSON.stringify(first.etag)} })`,
      "  .then(() => console.log('written'), (e) => console.log(e.code ?? e.message));",
    ].join('\n');
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        'bash',
        [
          '-c',
          'ulimit -f 1 && exec "$0" --import "$1" --input-type=module -e "$2"',
          process.execPath,
          tsx,
          script,
        ],
        (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout.trim()),
      );
    });
    expect(out).not.toBe('written');
    expect(leftovers()).toEqual([]);
    expect(readFileSync(join(root, 'd.narinfo'), 'utf8')).toBe('one');
    // And the next writer is not held off.
    await b.put('d.narinfo', text('two'), { ...opts, ifMatch: first.etag! });
    expect(readFileSync(join(root, 'd.narinfo'), 'utf8')).toBe('two');
  });

  it('waits while another writer holds the lock, then checks the etag as it is then', async () => {
    const b = new FileBackend(root);
    const first = await b.put('c.narinfo', text('one'), opts);
    writeFileSync(join(root, 'c.narinfo.lock'), '');
    const pending = b.put('c.narinfo', text('two'), { ...opts, ifMatch: first.etag! });
    await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(join(root, 'c.narinfo'), 'utf8')).toBe('one');
    unlinkSync(join(root, 'c.narinfo.lock'));
    await pending;
    expect(readFileSync(join(root, 'c.narinfo'), 'utf8')).toBe('two');
    expect(leftovers()).toEqual([]);
  });
});
