/**
 * The local Nix database read without `nix`: every record of a store real Nix made (1,500 chained
 * text paths, source paths, derivations with outputs, a path with 60 signatures so its row spills
 * into overflow pages) equals what `nix path-info --json --all` says; reads stay correct and
 * never wait while another process registers paths in a loop (the database in WAL mode); and a
 * damaged database gives a typed error, never a crash or a hang.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, expect, it } from 'vitest';
import { NixcacheError } from '../../src/errors.js';
import { formatHash, parseHash } from '../../src/hash/hash.js';
import { LocalNixDb, readLocalPathInfo } from '../../src/local/nix-db.js';
import { describeWithNix, repoRoot } from '../helpers/env.js';
import { nix } from '../helpers/nix.js';

interface NixJson {
  path: string;
  narHash: string;
  narSize: number;
  references: string[];
  deriver?: string;
  ca?: string;
  signatures?: string[];
}

const CHAIN = `
let
  n = 1500;
  step = acc: i: acc ++ [ (builtins.toFile "chain-\${toString i}"
    "link \${toString i} -> \${if acc == [] then "none" else builtins.elemAt acc (builtins.length acc - 1)}\\n") ];
in builtins.elemAt (builtins.foldl' step [] (builtins.genList (i: i) n)) (n - 1)
`;

describeWithNix('the local Nix database, read without nix', () => {
  let root: string;
  let store: string;
  let dbFile: string;
  let top: string;
  let signed: string;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'nixcache-nixdb-'));
    store = `local?root=${root}`;
    dbFile = join(root, 'nix', 'var', 'nix', 'db', 'db.sqlite');
    const expr = join(root, 'chain.nix');
    writeFileSync(expr, CHAIN);
    top = JSON.parse(nix(['nix-instantiate', '--store', store, '--eval', '--read-write-mode', expr]));
    const src = join(root, 'src');
    writeFileSync(src, 'a source path\n');
    signed = nix(['nix-store', '--store', store, '--add', src]);
    // Derivations (with deriver links from nothing yet) and their inputs.
    nix(['nix-instantiate', '--store', store, join(repoRoot, 'fixtures', 'closure.nix'), '-A', 'app']);
    // Enough signatures that the row no longer fits in its page.
    const keys: string[] = [];
    for (let i = 0; i < 60; i++) {
      const key = join(root, `key-${i}`);
      writeFileSync(key, nix(['nix', 'key', 'generate-secret', '--key-name', `nixdb-test-key-number-${i}`]));
      keys.push(key);
    }
    for (const key of keys) nix(['nix', 'store', 'sign', '--store', store, '--key-file', key, signed]);
  });

  it('reads every record exactly as nix path-info --json --all prints it', () => {
    const all = JSON.parse(nix(['nix', 'path-info', '--store', store, '--json', '--all'])) as NixJson[];
    expect(all.length).toBeGreaterThan(1500);
    const db = LocalNixDb.open(dbFile);
    try {
      for (const want of all) {
        const got = db.pathInfo(want.path);
        expect(got, want.path).toBeDefined();
        expect(formatHash(got!.narHash, 'sri')).toBe(formatHash(parseHash(want.narHash), 'sri'));
        expect(got!.narSize).toBe(want.narSize);
        expect(got!.references).toEqual([...want.references].sort());
        expect(got!.deriver).toBe(want.deriver);
        expect(got!.ca).toBe(want.ca);
        expect(got!.sigs).toEqual(want.signatures ?? []);
      }
      expect(db.pathInfo('/nix/store/00000000000000000000000000000000-absent')).toBeUndefined();
      expect(db.pathInfo(signed)!.sigs).toHaveLength(60);
    } finally {
      db.close();
    }
  });

  it('walks a 1,500-deep closure, references first, as nix-store -qR does', () => {
    const closure = readLocalPathInfo([top], { db: dbFile, closure: true });
    const want = nix(['nix-store', '--store', store, '-qR', top]).split('\n').sort();
    expect(closure.map((i) => i.path).sort()).toEqual(want);
    const position = new Map(closure.map((i, n) => [i.path, n]));
    for (const info of closure)
      for (const ref of info.references)
        if (ref !== info.path) expect(position.get(ref)!).toBeLessThan(position.get(info.path)!);
    // The walk follows references by row id: each record is the one pathInfo reads by path.
    const db = LocalNixDb.open(dbFile);
    try {
      for (const info of closure) expect(info).toEqual(db.pathInfo(info.path));
      // Several roots whose closures overlap: each record once, in the same order.
      const middle = closure[Math.floor(closure.length / 2)]!.path;
      const again = db.closure([middle, top, middle]);
      expect(again.map((i) => i.path).sort()).toEqual(want);
      expect(again.slice(0, closure.length / 2 + 1)).toEqual(closure.slice(0, closure.length / 2 + 1));
    } finally {
      db.close();
    }
    expect(() => readLocalPathInfo([`${top}x`], { db: dbFile })).toThrow(/is not a valid path/);
  });

  it('reads consistently while another process registers paths in a loop (a read a checkpoint lands in is read again)', async () => {
    const added = join(root, 'added');
    const script = `for i in $(seq 1 40); do echo "loop $i $RANDOM" > ${root}/f$i; nix-store --store '${store}' --add ${root}/f$i >> ${added}; done`;
    const writer = spawn('bash', ['-c', script], { stdio: 'ignore', env: { ...process.env } });
    const done = new Promise<number>((resolve) => writer.on('close', (code) => resolve(code ?? -1)));
    let reads = 0;
    let sawWal = false;
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    while (!finished) {
      sawWal ||= existsSync(`${dbFile}-wal`);
      // Paths the writer printed were committed before this snapshot is taken.
      const text = existsSync(added) ? readFileSync(added, 'utf8') : '';
      const committed = text
        .slice(0, text.lastIndexOf('\n') + 1)
        .split('\n')
        .filter(Boolean);
      const started = performance.now();
      const db = LocalNixDb.open(dbFile);
      try {
        expect(db.closure([top])).toHaveLength(1500);
        for (const p of committed) expect(db.pathInfo(p), p).toBeDefined();
      } finally {
        db.close();
      }
      // Each registration checkpoints: a read waits for a gap between them, never for the lock.
      expect(performance.now() - started).toBeLessThan(30_000);
      reads++;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await done).toBe(0);
    expect(reads).toBeGreaterThanOrEqual(1);
    const lines = readFileSync(added, 'utf8').trim().split('\n');
    expect(readLocalPathInfo(lines, { db: dbFile })).toHaveLength(40);
    console.log(`[nix-db] ${reads} consistent reads during 40 registrations; WAL seen: ${sawWal}`);
  });

  it('answers a damaged database with a typed error, never a crash or a hang', () => {
    const original = readFileSync(dbFile);
    const copy = join(root, 'damaged.sqlite');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(original.length - 1), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 40,
        }),
        fc.option(fc.nat(original.length), { nil: undefined }),
        (flips, cut) => {
          const bytes = Buffer.from(original);
          for (const [at, x] of flips) bytes[at] = bytes[at]! ^ x;
          writeFileSync(copy, cut === undefined ? bytes : bytes.subarray(0, cut));
          try {
            const db = LocalNixDb.open(copy);
            try {
              db.closure([top]);
            } finally {
              db.close();
            }
          } catch (e) {
            if (!(e instanceof NixcacheError)) throw e;
          }
        },
      ),
      { numRuns: 150 },
    );
    copyFileSync(dbFile, copy);
    writeFileSync(copy, 'not a database at all, but long enough to have a header...'.repeat(3));
    expect(() => LocalNixDb.open(copy)).toThrow(expect.objectContaining({ code: 'BAD_DATABASE' }));
  });
});
