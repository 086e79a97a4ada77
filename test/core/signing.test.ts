import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatHash,
  formatPublicKey,
  formatSecretKey,
  generateSecretKey,
  hashBytes,
  makeTextPath,
  NixcacheError,
  narInfoFingerprint,
  parseHash,
  parseNarInfo,
  parsePublicKey,
  parseSecretKey,
  signFingerprint,
  signNarInfo,
  toPublicKey,
  verifyNarInfo,
} from '../../src/index.js';
import { fromHex, toBase64, toHex } from '../../src/internal/bytes.js';
import {
  type Ed25519Backend,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
  ed25519VerifyAsync,
  hasSmallOrder,
} from '../../src/signing/ed25519.js';
import vectors from '../vectors/signatures.json' with { type: 'json' };

const keys = vectors.keys as Record<string, { secret?: string; public: string }>;
const backends: Ed25519Backend[] = ['native', 'pure'];

describe('keys', () => {
  it('derives the public keys of the published test key pairs', () => {
    for (const k of [keys.goNixTest1!, keys.snixDummy!]) {
      const secret = parseSecretKey(k.secret!);
      expect(formatPublicKey(toPublicKey(secret))).toBe(k.public);
      expect(formatSecretKey(secret)).toBe(k.secret);
      expect(formatPublicKey(parsePublicKey(k.public))).toBe(k.public);
    }
  });

  it('reads a key file with a trailing newline', () => {
    expect(parseSecretKey(`${keys.goNixTest1!.secret}\n`).name).toBe('test1');
    expect(parsePublicKey(`${keys.goNixTest1!.public}\n`).name).toBe('test1');
  });

  it('reproduces RFC 8032 TEST SHA(abc) in Nix key format (nix local-keys.cc)', () => {
    const v = vectors.rfc8032;
    const seed = fromHex(v.seed)!;
    const pk = fromHex(v.public)!;
    const secret = parseSecretKey(`test:${toBase64(new Uint8Array([...seed, ...pk]))}`);
    expect(toHex(secret.publicKey.key)).toBe(v.public);
    const message = new Uint8Array(createHash('sha512').update(v.messageIsSha512Of).digest());
    for (const backend of backends) {
      expect(toHex(ed25519Sign(seed, message, backend))).toBe(v.signature);
      expect(ed25519Verify(pk, message, fromHex(v.signature)!, backend)).toBe(true);
    }
  });

  it('rejects a secret key whose public half does not match its seed', () => {
    const bytes = Buffer.from(keys.goNixTest1!.secret!.split(':')[1]!, 'base64');
    bytes[40] = bytes[40]! ^ 1;
    expect(() => parseSecretKey(`test1:${bytes.toString('base64')}`)).toThrow(/public half does not match/);
  });

  const badKeys = [
    ['no colon', 'abc'],
    ['an empty name', ':AAAA'],
    ['whitespace in the name', 'a b:AAAA'],
    ['bad base64', 'k:@@@@'],
    ['the wrong length', 'k:AAAA'],
  ];
  it.each(badKeys)('rejects a key with %s, without echoing the key', (_, text) => {
    for (const parse of [parseSecretKey, parsePublicKey]) {
      try {
        parse(text!);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(NixcacheError);
        expect((e as NixcacheError).code).toBe('BAD_KEY');
        if (text!.length > 6) expect((e as Error).message).not.toContain(text!.slice(2));
      }
    }
  });

  it('never shows the secret in JSON, inspect, String or errors', () => {
    const key = generateSecretKey('cache.example.org-1');
    const secretText = formatSecretKey(key);
    const secretB64 = secretText.split(':')[1]!;
    const seedB64 = toBase64(key.seed());
    for (const shown of [
      JSON.stringify(key),
      inspect(key),
      String(key),
      JSON.stringify({ key }),
      inspect({ key }),
    ]) {
      expect(shown).not.toContain(secretB64);
      expect(shown).not.toContain(seedB64.slice(0, 40));
      expect(shown).toContain('cache.example.org-1');
    }
    const tampered = `${secretText.slice(0, -6)}AAAA==`;
    try {
      parseSecretKey(tampered);
    } catch (e) {
      expect((e as Error).message).not.toContain(secretB64.slice(0, 20));
      expect(JSON.stringify(e)).not.toContain(secretB64.slice(0, 20));
    }
  });

  it('generates distinct, valid keys and rejects bad names', () => {
    const a = generateSecretKey('k-1');
    const b = generateSecretKey('k-1');
    expect(formatSecretKey(a)).not.toBe(formatSecretKey(b));
    expect(formatSecretKey(parseSecretKey(formatSecretKey(a)))).toBe(formatSecretKey(a));
    expect(() => generateSecretKey('')).toThrow(NixcacheError);
    expect(() => generateSecretKey('a b')).toThrow(NixcacheError);
  });
});

describe('signatures', () => {
  const cacheNixosOrg = keys.cacheNixosOrg!.public;

  it.each(vectors.narinfos)('verifies the $id vector ($from)', (v) => {
    const info = parseNarInfo(v.text);
    for (const name of v.validWith) {
      for (const backend of backends) {
        const result = verifyNarInfo(info, [keys[name]!.public], { backend });
        expect(result.trusted).toBe(true);
        expect(result.signedBy).toEqual([keys[name]!.public.split(':')[0]]);
        expect(result.invalidSignatures).toEqual([]);
      }
    }
    if ('contentAddressed' in v) expect(verifyNarInfo(info, []).contentAddressed).toBe(true);
    else expect(verifyNarInfo(info, []).trusted).toBe(false);
  });

  it('signs the curl narinfo exactly as the go-nix test key did', () => {
    const curl = vectors.narinfos[0]!;
    const key = parseSecretKey(keys.goNixTest1!.secret!);
    for (const backend of backends)
      expect(signFingerprint(curl.fingerprint, key, backend)).toBe(curl.signWith!.signature);
  });

  it('adds a signature once and keeps the others', () => {
    const info = parseNarInfo(vectors.narinfos[0]!.text);
    const key = generateSecretKey('mine-1');
    const once = signNarInfo(info, key);
    expect(once.sigs).toHaveLength(3);
    expect(signNarInfo(once, key)).toBe(once);
    expect(verifyNarInfo(once, [formatPublicKey(key.publicKey), cacheNixosOrg]).signedBy.toSorted()).toEqual([
      'cache.nixos.org-1',
      'mine-1',
    ]);
  });

  it('reports unknown, malformed and invalid signatures without counting or throwing', () => {
    const info = parseNarInfo(vectors.narinfos[2]!.text);
    const good = info.sigs[0]!;
    const b64 = good.split(':')[1]!;
    const sigs = [
      good.replace(b64, `${b64.slice(0, 10)}${b64[10] === 'A' ? 'B' : 'A'}${b64.slice(11)}`),
      'cache.nixos.org-1:AAAA',
      'cache.nixos.org-1:@@@@',
      'someone-else:AAAA',
      'nocolon',
    ];
    const result = verifyNarInfo({ ...info, sigs }, [cacheNixosOrg]);
    expect(result.trusted).toBe(false);
    expect(result.signedBy).toEqual([]);
    expect(result.unknownSignatures).toEqual(['someone-else:AAAA']);
    expect(result.invalidSignatures.map((s) => s.reason)).toEqual([
      'signature does not match the narinfo',
      'signature has 3 bytes, expected 64',
      'signature is not valid base64',
      'not of the form <key name>:<base64>',
    ]);
  });

  it('uses the first of two trusted keys with the same name, as Nix does', () => {
    const info = parseNarInfo(vectors.narinfos[2]!.text);
    const other = formatPublicKey({ name: 'cache.nixos.org-1', key: generateSecretKey('x').publicKey.key });
    expect(verifyNarInfo(info, [other, cacheNixosOrg]).trusted).toBe(false);
    expect(verifyNarInfo(info, [cacheNixosOrg, other]).trusted).toBe(true);
  });

  it('trusts a CA claim the narinfo proves without signatures, and not a false one', () => {
    // fixed:r:sha1 covers the NAR in sha1, which only the contents show: provisional, not trusted.
    const texlive = parseNarInfo(vectors.narinfos[1]!.text);
    const unsigned = { ...texlive, sigs: [] };
    expect(verifyNarInfo(unsigned, [])).toMatchObject({
      trusted: false,
      contentAddressed: true,
      contentAddressNeedsContents: true,
    });
    const lying = { ...unsigned, ca: 'fixed:r:sha1:1ak1ymbmsfx7z8kh09jzkr3a4dvkrfjx' };
    const result = verifyNarInfo(lying, []);
    expect(result.trusted).toBe(false);
    expect(result.contentAddressProblem).toMatch(/computes to/);
    // Nix's own test narinfo has a self-reference, but its NarHash is not its CA hash: Nix would
    // refuse it on import ("ca hash mismatch"); with NarHash = the CA hash it is trusted.
    const selfRef = parseNarInfo(vectors.canonical.text);
    const contradicting = verifyNarInfo({ ...selfRef, sigs: [] }, []);
    expect(contradicting).toMatchObject({ trusted: false, contentAddressed: false });
    expect(contradicting.contentAddressProblem).toMatch(
      /CA hash sha256:1lr187.* does not match NarHash sha256:09ymwq/,
    );
    const consistent = { ...selfRef, sigs: [], narHash: parseHash(selfRef.ca!.slice('fixed:r:'.length)) };
    expect(verifyNarInfo(consistent, [])).toMatchObject({ trusted: true, contentAddressed: true });
    expect(verifyNarInfo(consistent, []).contentAddressNeedsContents).toBeUndefined();
  });

  it('never trusts a narinfo whose fixed:r:sha256 CA hash is not its NarHash, even when signed', () => {
    const key = generateSecretKey('tamper-1');
    const pub = formatPublicKey(key.publicKey);
    const selfRef = parseNarInfo(vectors.canonical.text);
    const ca = parseHash(selfRef.ca!.slice('fixed:r:'.length));
    const good = signNarInfo({ ...selfRef, sigs: [], narHash: ca }, key);
    expect(verifyNarInfo(good, [pub])).toMatchObject({ trusted: true, signedBy: ['tamper-1'] });
    // The NAR was swapped and NarHash changed to match, then signed (e.g. by a careless re-signer).
    const narHash = { algorithm: 'sha256' as const, digest: new Uint8Array(32).fill(7) };
    const tampered = signNarInfo({ ...selfRef, sigs: [], narHash }, key);
    const v = verifyNarInfo(tampered, [pub]);
    expect(v.signedBy).toEqual(['tamper-1']);
    expect(v.trusted).toBe(false);
    expect(v.contentAddressProblem).toMatch(/does not match NarHash/);
  });

  it('counts a text or flat CA claim only as provisional: the contents must prove it', () => {
    const contents = new TextEncoder().encode('hello\n');
    const storePath = makeTextPath('hello.txt', contents);
    const base = parseNarInfo(
      [
        `StorePath: ${storePath}`,
        'URL: nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar',
        'Compression: none',
        'NarHash: sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh',
        'NarSize: 120',
        'References: ',
        `CA: text:${formatHash({ algorithm: 'sha256', digest: hashBytes('sha256', contents) })}`,
        '',
      ].join('\n'),
    );
    expect(verifyNarInfo(base, [])).toMatchObject({
      trusted: false,
      contentAddressed: true,
      contentAddressNeedsContents: true,
    });
    const key = generateSecretKey('text-1');
    expect(verifyNarInfo(signNarInfo(base, key), [formatPublicKey(key.publicKey)]).trusted).toBe(true);
  });
});

describe('Ed25519 back ends', () => {
  it('the small-order encodings really are of small order', async () => {
    const ed = await import('@noble/ed25519');
    for (const hex of [
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      '0100000000000000000000000000000000000000000000000000000000000000',
      '0000000000000000000000000000000000000000000000000000000000000000',
    ]) {
      expect(ed.Point.fromHex(hex, true).isSmallOrder()).toBe(true);
      expect(hasSmallOrder(fromHex(hex)!)).toBe(true);
    }
  });

  it('native and pure agree on keys, signatures and verification (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(511),
        (seed, msg, flip) => {
          const pk = ed25519PublicKey(seed, 'native');
          expect(ed25519PublicKey(seed, 'pure')).toEqual(pk);
          const sig = ed25519Sign(seed, msg, 'native');
          expect(ed25519Sign(seed, msg, 'pure')).toEqual(sig);
          expect(ed25519Verify(pk, msg, sig, 'native')).toBe(true);
          expect(ed25519Verify(pk, msg, sig, 'pure')).toBe(true);
          const bad = sig.slice();
          bad[flip >> 3] = bad[flip >> 3]! ^ (1 << (flip & 7));
          expect(ed25519Verify(pk, msg, bad, 'native')).toBe(false);
          expect(ed25519Verify(pk, msg, bad, 'pure')).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('native, WebCrypto and pure agree on hostile inputs: non-canonical S, small-order R and keys, garbage (property)', async () => {
    const seed = new Uint8Array(32).fill(7);
    const pk = ed25519PublicKey(seed);
    const msg = new Uint8Array([1, 2, 3]);
    const sig = ed25519Sign(seed, msg);
    const L = fromHex('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010')!;
    const sPlusL = sig.slice();
    let carry = 0;
    for (let i = 0; i < 32; i++) {
      const v = sig[32 + i]! + L[i]! + carry;
      sPlusL[32 + i] = v & 0xff;
      carry = v >> 8;
    }
    const smallOrder = fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')!;
    const cases: [Uint8Array, Uint8Array][] = [
      [pk, sPlusL],
      [pk, new Uint8Array(64)],
      [smallOrder, new Uint8Array([...smallOrder, ...new Uint8Array(32)])],
      [new Uint8Array(32), new Uint8Array(64)],
      [fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')!, sig],
      [fromHex('f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')!, sig],
      [pk, new Uint8Array([...smallOrder, ...sig.subarray(32)])],
    ];
    for (const [key, s] of cases) {
      expect(ed25519Verify(key, msg, s, 'native')).toBe(false);
      expect(ed25519Verify(key, msg, s, 'pure')).toBe(false);
    }
    for (const [key, s] of cases) expect(await ed25519VerifyAsync(key, msg, s, 'webcrypto')).toBe(false);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        (key, s) => {
          expect(ed25519Verify(key, msg, s, 'native')).toBe(ed25519Verify(key, msg, s, 'pure'));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('WebCrypto (the async native path of browsers and workers) agrees with pure-TS (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.nat(511),
        async (seed, msg, flip) => {
          const pk = ed25519PublicKey(seed, 'pure');
          const sig = ed25519Sign(seed, msg, 'pure');
          expect(await ed25519VerifyAsync(pk, msg, sig, 'webcrypto')).toBe(true);
          const bad = sig.slice();
          bad[flip >> 3] = bad[flip >> 3]! ^ (1 << (flip & 7));
          expect(await ed25519VerifyAsync(pk, msg, bad, 'webcrypto')).toBe(
            ed25519Verify(pk, msg, bad, 'pure'),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('fingerprints sign and verify as text bytes', () => {
    const info = parseNarInfo(vectors.narinfos[0]!.text);
    const key = parseSecretKey(keys.snixDummy!.secret!);
    const signed = signNarInfo({ ...info, sigs: [] }, key);
    expect(signed.sigs[0]).toBe(signFingerprint(narInfoFingerprint(info), key));
    expect(verifyNarInfo(signed, [keys.snixDummy!.public]).trusted).toBe(true);
  });
});
