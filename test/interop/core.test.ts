/**
 * The format core against real Nix: the committed oracle snapshot (fixtures/core/nix-oracle.json,
 * made by Nix 2.8) always, and the installed `nix` live.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OracleResult, runOracle } from '../../fixtures/core/nix-oracle.js';
import snapshot from '../../fixtures/core/nix-oracle.json' with { type: 'json' };
import {
  formatNarInfo,
  formatPublicKey,
  formatSecretKey,
  generateSecretKey,
  hashBytes,
  makeFixedOutputPath,
  makeTextPath,
  narInfoFingerprint,
  parseHash,
  parseNarInfo,
  parseSecretKey,
  signFingerprint,
  signNarInfo,
  toPublicKey,
  verifyNarInfo,
} from '../../src/index.js';
import { describeWithNix, repoRoot } from '../helpers/env.js';

function checkOracle(oracle: OracleResult): void {
  it('derives the public key that `nix key convert-secret-to-public` printed', () => {
    expect(formatPublicKey(toPublicKey(parseSecretKey(oracle.fixtureSecretKey)))).toBe(oracle.publicKey);
    expect(formatSecretKey(parseSecretKey(oracle.fixtureSecretKey))).toBe(oracle.fixtureSecretKey);
  });

  it('makes the same signatures as `nix store sign`', () => {
    const key = parseSecretKey(oracle.fixtureSecretKey);
    expect(oracle.signed.length).toBeGreaterThanOrEqual(5);
    for (const s of oracle.signed) {
      const info = {
        storePath: s.path,
        narHash: parseHash(s.narHash),
        narSize: s.narSize,
        references: s.references.map((r) => basename(r)),
      };
      expect(s.signatures).toHaveLength(1);
      expect(signFingerprint(narInfoFingerprint(info), key)).toBe(s.signatures[0]);
    }
  });

  it('computes the store paths of nix-store --add and --add-fixed (flat/recursive, md5/sha1/sha256)', () => {
    expect(oracle.adds).toHaveLength(8);
    for (const add of oracle.adds) {
      const name = basename(add.path).slice(33);
      const hash = parseHash(add.hash, add.algorithm);
      if (add.method === 'flat') {
        expect(hashBytes(add.algorithm, oracle.fileContents)).toEqual(hash.digest);
      }
      expect(makeFixedOutputPath(name, { method: add.method, hash }), add.command).toBe(add.path);
    }
  });

  it('computes the paths of builtins.toFile, with and without references', () => {
    for (const t of oracle.toFile) expect(makeTextPath(t.name, t.contents, t.references)).toBe(t.path);
  });

  it('parses, round-trips and verifies every narinfo `nix copy --to file://` wrote', () => {
    expect(oracle.cacheNarInfos.length).toBe(oracle.signed.length);
    for (const { file, text } of oracle.cacheNarInfos) {
      const info = parseNarInfo(text, { source: file });
      expect(formatNarInfo(info)).toBe(text);
      const { original: _, ...fresh } = info;
      expect(formatNarInfo(fresh)).toBe(text);
      const result = verifyNarInfo(info, [oracle.publicKey]);
      expect(result.trusted).toBe(true);
      expect(result.signedBy).toEqual([oracle.keyName]);
    }
  });
}

describe('the committed Nix 2.8 oracle snapshot', () => {
  checkOracle(snapshot as OracleResult);
});

describeWithNix('real nix, live', () => {
  const work = mkdtempSync(join(tmpdir(), 'nixcache-interop-'));
  let live: OracleResult | undefined;
  beforeAll(() => {
    live = runOracle(work, join(repoRoot, 'fixtures', 'closure.nix'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  describe('answers the oracle questions the same way', () => {
    const proxy = new Proxy({} as OracleResult, {
      get: (_, k) => (live as unknown as Record<string | symbol, unknown>)[k],
    });
    checkOracle(proxy);
  });

  it('accepts keys made by nixcache in `nix store sign`, and our signatures in `nix store verify`', () => {
    const key = generateSecretKey('nixcache-made-1');
    const keyFile = join(work, 'ours.secret');
    writeFileSync(keyFile, formatSecretKey(key), { mode: 0o600 });
    const pub = formatPublicKey(toPublicKey(key));
    // An input-addressed path: a CA path would be trusted without any signature.
    const path = live!.signed.find((s) => s.path.endsWith('-nixcache-fixture-app'))!.path;
    const env = { ...process.env, NIX_CONFIG: 'experimental-features = nix-command' };
    execFileSync('nix', ['store', 'sign', '--key-file', keyFile, path], { env });
    const [info] = JSON.parse(
      execFileSync('nix', ['path-info', '--json', path], { env, encoding: 'utf8' }),
    ) as {
      narHash: string;
      narSize: number;
      references: string[];
      signatures: string[];
    }[];
    const ours = signFingerprint(
      narInfoFingerprint({
        storePath: path,
        narHash: parseHash(info!.narHash),
        narSize: info!.narSize,
        references: info!.references.map((r) => basename(r)),
      }),
      key,
    );
    expect(info!.signatures).toContain(ours);

    // A file:// cache whose narinfos carry only nixcache's signature: nix store verify accepts it
    // with our public key, and rejects it once a signature byte is flipped.
    const cache = join(work, 'ours-cache');
    execFileSync('nix', ['copy', '--to', `file://${cache}?compression=none`, path], { env });
    const file = `${basename(path).slice(0, 32)}.narinfo`;
    const parsed = parseNarInfo(readFileSync(join(cache, file), 'utf8'));
    const signed = signNarInfo({ ...parsed, sigs: [] }, key);
    writeFileSync(join(cache, file), formatNarInfo(signed));
    const verify = (trusted: string) =>
      execFileSync(
        'nix',
        [
          'store',
          'verify',
          '--store',
          `file://${cache}`,
          '--trusted-public-keys',
          trusted,
          '--sigs-needed',
          '1',
          path,
        ],
        { env, stdio: 'pipe' },
      );
    expect(() => verify(pub)).not.toThrow();
    expect(verifyNarInfo(signed, [pub]).trusted).toBe(true);
    const sig = signed.sigs[0]!;
    const flipped = `${sig.slice(0, -4)}${sig.at(-4) === 'A' ? 'B' : 'A'}${sig.slice(-3)}`;
    writeFileSync(join(cache, file), formatNarInfo({ ...signed, sigs: [flipped] }));
    expect(() => verify(pub)).toThrow();
    expect(verifyNarInfo({ ...signed, sigs: [flipped] }, [pub]).trusted).toBe(false);
  });
});
