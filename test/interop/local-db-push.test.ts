/**
 * Pushing exactly what Nix knows: metadata read from the local Nix database (no `nix` binary
 * involved) gives narinfos whose References, Deriver, NarHash, NarSize, CA and signatures equal
 * those `nix copy --to file://` writes for the same paths; real Nix substitutes them; a path
 * changed on disk after registration is refused and nothing of it is uploaded; and a push reads
 * the database while another process keeps registering paths.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pushPaths } from '../../src/cache/index.js';
import { localNixMetadata } from '../../src/cache/local-metadata.js';
import { parseNarInfo } from '../../src/index.js';
import type { NarInfo } from '../../src/narinfo/types.js';
import { openStore } from '../../src/store/index.js';
import { describeWithNix } from '../helpers/env.js';
import {
  buildFixtureClosure,
  type FixtureClosure,
  nix,
  nixSigningKey,
  nixSubstitute,
} from '../helpers/nix.js';

function narinfos(dir: string): Map<string, NarInfo> {
  const out = new Map<string, NarInfo>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.narinfo'))) {
    const info = parseNarInfo(readFileSync(join(dir, f), 'utf8'), { source: f });
    out.set(info.storePath, info);
  }
  return out;
}

describeWithNix('push with metadata from the local Nix database', () => {
  const work = mkdtempSync(join(tmpdir(), 'nixcache-localdb-'));
  let closure: FixtureClosure;
  let fixed: string;
  let publicKey: string;
  let roots: string[];

  beforeAll(() => {
    closure = buildFixtureClosure();
    // A flat fixed-output path, and signatures in the database (as a substituted path has).
    const file = join(work, 'fixed-input.txt');
    writeFileSync(file, `fixed content ${Date.now()}\n`);
    fixed = nix(['nix-store', '--add-fixed', 'sha256', file]);
    const signing = nixSigningKey(work, 'localdb');
    publicKey = signing.publicKey;
    roots = [closure.app, fixed];
    nix(['nix', 'store', 'sign', '--key-file', signing.keyFile, '--recursive', ...roots]);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('writes the References, Deriver, NarHash, NarSize, CA and Sig lines nix copy writes', async () => {
    const nixCache = join(work, 'by-nix');
    nix(['nix', 'copy', '--to', `file://${nixCache}`, ...roots]);
    const ours = join(work, 'by-nixcache');
    const store = await openStore(`file://${ours}`, { onWarning: () => {} });
    const metadata = localNixMetadata(roots);
    const result = await pushPaths(store, roots, { metadata });
    expect(result.failed).toEqual([]);
    const theirs = narinfos(nixCache);
    const mine = narinfos(ours);
    expect([...mine.keys()].sort()).toEqual([...theirs.keys()].sort());
    const kinds = new Set<string>();
    for (const [path, want] of theirs) {
      const got = mine.get(path)!;
      expect(got.references, path).toEqual(want.references);
      expect(got.deriver, path).toBe(want.deriver);
      expect(got.narHash, path).toEqual(want.narHash);
      expect(got.narSize, path).toBe(want.narSize);
      expect(got.ca, path).toBe(want.ca);
      expect([...got.sigs].sort(), path).toEqual([...want.sigs].sort());
      if (got.deriver) kinds.add('deriver');
      if (got.ca?.startsWith('text:')) kinds.add('text');
      if (got.ca?.startsWith('fixed:')) kinds.add('fixed');
      if (got.references.length) kinds.add('references');
      if (got.sigs.length) kinds.add('sigs');
    }
    expect([...kinds].sort()).toEqual(['deriver', 'fixed', 'references', 'sigs', 'text']);
    // Real Nix substitutes it, trusting the key the database's signatures were made with.
    for (const root of roots) {
      const r = await nixSubstitute(`file://${ours}`, join(work, `fresh-${root.slice(-6)}`), root, publicKey);
      expect(r.status, r.stderr).toBe(0);
    }
  });

  it('refuses a path changed on disk after registration, naming it, and uploads nothing of it', async () => {
    const file = join(work, 'will-change.txt');
    writeFileSync(file, `original ${Date.now()}\n`);
    const path = nix(['nix-store', '--add', file]);
    const metadata = localNixMetadata([path]);
    chmodSync(path, 0o644);
    writeFileSync(path, 'changed behind Nix’s back\n');
    chmodSync(path, 0o444);
    const dir = join(work, 'changed');
    const store = await openStore(`file://${dir}`, { onWarning: () => {} });
    const result = await pushPaths(store, [path], { metadata });
    expect(result.pushed).toEqual([]);
    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]!.error.message).toContain(path);
    const left = existsSync(join(dir, 'nar')) ? readdirSync(join(dir, 'nar')) : [];
    expect(left).toEqual([]);
    expect(readdirSync(dir).filter((n) => n.endsWith('.narinfo'))).toEqual([]);
    // Leave no corrupted path in the machine's store.
    nix(['nix-store', '--delete', path]);
  });

  it('pushes while another process keeps registering paths in the database', async () => {
    const script = `for i in $(seq 1 30); do echo "writer $i $RANDOM $$" > ${work}/w$i; nix-store --add ${work}/w$i > /dev/null; done`;
    const writer = spawn('bash', ['-c', script], { stdio: 'ignore' });
    const finished = new Promise<number>((resolve) => writer.on('close', (c) => resolve(c ?? -1)));
    let pushes = 0;
    let running = true;
    void finished.then(() => {
      running = false;
    });
    while (running || pushes === 0) {
      const store = await openStore(`file://${join(work, `concurrent-${pushes}`)}`, { onWarning: () => {} });
      const started = performance.now();
      const result = await pushPaths(store, [closure.app], { metadata: localNixMetadata([closure.app]) });
      expect(result.failed).toEqual([]);
      expect(result.pushed).toHaveLength(closure.metadata.size);
      expect(performance.now() - started).toBeLessThan(30_000);
      pushes++;
    }
    expect(await finished).toBe(0);
    expect(pushes).toBeGreaterThan(0);
  });
});
