/**
 * The asynchronous native Ed25519 path (node:crypto's verify on libuv's thread pool) and the
 * batch API over it must give exactly the answers of the synchronous native, pure-TS and
 * WebCrypto paths: on the corpus, on random inputs and on libsodium's hostile cases.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  generateSecretKey,
  makeKeyring,
  type NarInfo,
  parseNarInfo,
  setNativeVerifyConcurrency,
  signFingerprint,
  signNarInfo,
  verifyNarInfo,
  verifyNarInfoAsync,
  verifyNarInfos,
} from '../../src/index.js';
import { fromHex } from '../../src/internal/bytes.js';
import { nativeSodium, setNativeCryptoEnabled, setNativeSodiumEnabled } from '../../src/internal/native.js';
import {
  defaultSignBackend,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Signer,
  ed25519Verify,
  ed25519VerifyAsync,
} from '../../src/signing/ed25519.js';
import { CACHE_NIXOS_ORG_KEY, corpusNarInfos } from '../helpers/corpus.js';
import { describeWithCorpus, describeWithSodium } from '../helpers/env.js';
import vectors from '../vectors/signatures.json' with { type: 'json' };

afterEach(() => setNativeVerifyConcurrency(undefined));

function hostileCases(): { pk: Uint8Array; msg: Uint8Array; cases: [Uint8Array, Uint8Array][] } {
  const seed = new Uint8Array(32).fill(9);
  const pk = ed25519PublicKey(seed);
  const msg = new Uint8Array([4, 5, 6]);
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
  const smallOrderSigned = fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa')!;
  return {
    pk,
    msg,
    cases: [
      [pk, sig],
      [pk, sPlusL],
      [pk, new Uint8Array(64)],
      [pk, sig.subarray(0, 63)],
      [pk.subarray(0, 31), sig],
      [smallOrder, new Uint8Array([...smallOrder, ...new Uint8Array(32)])],
      [smallOrderSigned, sig],
      [new Uint8Array(32), new Uint8Array(64)],
      [fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')!, sig],
      [fromHex('f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')!, sig],
      [pk, new Uint8Array([...smallOrder, ...sig.subarray(32)])],
      [pk, new Uint8Array([...smallOrderSigned, ...sig.subarray(32)])],
    ],
  };
}

describe('asynchronous native Ed25519', () => {
  it('agrees with the synchronous back ends and WebCrypto on hostile inputs', async () => {
    const { msg, cases } = hostileCases();
    for (const [key, s] of cases) {
      const expected = ed25519Verify(key, msg, s, 'pure');
      expect(ed25519Verify(key, msg, s, 'native')).toBe(expected);
      expect(await ed25519VerifyAsync(key, msg, s, 'native')).toBe(expected);
      expect(await ed25519VerifyAsync(key, msg, s)).toBe(expected);
      expect(await ed25519VerifyAsync(key, msg, s, 'webcrypto')).toBe(expected);
      expect(await ed25519VerifyAsync(key, msg, s, 'pure')).toBe(expected);
    }
  });

  it('agrees with pure-TS on random keys, messages and bit flips (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.nat(767),
        async (seed, msg, flip) => {
          const pk = ed25519PublicKey(seed);
          const sig = ed25519Sign(seed, msg);
          expect(await ed25519VerifyAsync(pk, msg, sig, 'native')).toBe(true);
          // Flip a bit of the signature, the key or the message.
          const [bad, badKey, badMsg] = [sig.slice(), pk.slice(), msg.slice()];
          if (flip < 512) bad[flip >> 3] = bad[flip >> 3]! ^ (1 << (flip & 7));
          else badKey[(flip - 512) >> 3] = badKey[(flip - 512) >> 3]! ^ (1 << (flip & 7));
          if (flip % 3 === 0 && badMsg.length > 0) badMsg[0] = badMsg[0]! ^ 1;
          expect(await ed25519VerifyAsync(badKey, badMsg, bad, 'native')).toBe(
            ed25519Verify(badKey, badMsg, bad, 'pure'),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('agrees with pure-TS on random garbage keys and signatures (property)', async () => {
    const msg = new Uint8Array([1, 2, 3]);
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        async (key, s) => {
          expect(await ed25519VerifyAsync(key, msg, s, 'native')).toBe(ed25519Verify(key, msg, s, 'pure'));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sees a key array changed in place after it was cached', async () => {
    const seed = new Uint8Array(32).fill(3);
    const other = new Uint8Array(32).fill(4);
    const msg = new Uint8Array([7]);
    const key = ed25519PublicKey(seed);
    const sig = ed25519Sign(seed, msg);
    expect(await ed25519VerifyAsync(key, msg, sig)).toBe(true);
    key.set(ed25519PublicKey(other));
    expect(await ed25519VerifyAsync(key, msg, sig)).toBe(false);
    expect(ed25519Verify(key, msg, sig)).toBe(false);
    expect(await ed25519VerifyAsync(key, msg, ed25519Sign(other, msg))).toBe(true);
  });

  it('runs many verifications at once under a small in-flight limit, each with its own answer', async () => {
    setNativeVerifyConcurrency(2);
    const seed = new Uint8Array(32).fill(5);
    const pk = ed25519PublicKey(seed);
    const msgs = Array.from({ length: 300 }, (_, i) => new Uint8Array([i & 255, i >> 8]));
    const sigs = msgs.map((m, i) => {
      const s = ed25519Sign(seed, m);
      if (i % 7 === 0) s[5] = s[5]! ^ 1;
      return s;
    });
    const results = await Promise.all(msgs.map((m, i) => ed25519VerifyAsync(pk, m, sigs[i]!)));
    expect(results).toEqual(msgs.map((_, i) => i % 7 !== 0));
    expect(() => setNativeVerifyConcurrency(0)).toThrow(RangeError);
  });
});

describeWithCorpus('asynchronous narinfo verification on the corpus', () => {
  const texts = corpusNarInfos();
  const ring = makeKeyring([CACHE_NIXOS_ORG_KEY]);
  const infos = texts.map((t) => parseNarInfo(t));

  it('verifyNarInfoAsync gives the synchronous verdict for every narinfo, all at once', async () => {
    const results = await Promise.all(infos.map((i) => verifyNarInfoAsync(i, ring)));
    results.forEach((r, i) => {
      expect(r).toEqual(verifyNarInfo(infos[i]!, ring));
      expect(r.signedBy).toEqual(['cache.nixos.org-1']);
    });
  });

  it('verifyNarInfos yields every narinfo once, in order, with the synchronous verdicts', async () => {
    // Every third narinfo gets a wrong NarSize, so its signature no longer holds.
    const mixed: NarInfo[] = infos.map((i, k) => (k % 3 === 0 ? { ...i, narSize: i.narSize + 1 } : i));
    async function* slowly(): AsyncGenerator<NarInfo> {
      for (const i of mixed) yield i;
    }
    for (const source of [mixed, slowly()]) {
      const seen: NarInfo[] = [];
      for await (const { info, result } of verifyNarInfos(source, [CACHE_NIXOS_ORG_KEY], {
        concurrency: 7,
      })) {
        expect(result).toEqual(verifyNarInfo(info, ring));
        expect(result.signedBy.length > 0).toBe(seen.length % 3 !== 0);
        seen.push(info);
      }
      expect(seen).toEqual(mixed);
    }
  });
});

describe('verifyNarInfos', () => {
  it('works on every back end and checks its arguments before any work', async () => {
    const key = generateSecretKey('batch-1');
    const info = signNarInfo(parseNarInfo(vectors.canonical.text), key);
    for (const backend of ['native', 'pure', 'webcrypto'] as const) {
      const out = [];
      for await (const v of verifyNarInfos([info, info], [key.publicKey], { backend, concurrency: 1 }))
        out.push(v);
      expect(out.map((v) => v.result.signedBy)).toEqual([['batch-1'], ['batch-1']]);
    }
    await expect(verifyNarInfos([info], ['bad key']).next()).rejects.toThrow(/public key/);
    await expect(verifyNarInfos([info], [], { concurrency: 0 }).next()).rejects.toThrow(RangeError);
  });
});

describe('signing with a key reused for many signatures', () => {
  it('ed25519Signer and the cached signer of signFingerprint sign as ed25519Sign does, on both back ends', () => {
    const key = generateSecretKey('reuse-1');
    const seed = key.seed();
    const native = ed25519Signer(seed, 'native');
    const pure = ed25519Signer(seed, 'pure');
    for (const text of ['', 'a', '1;/nix/store/x;sha256:y;1;']) {
      const msg = new TextEncoder().encode(text);
      expect(native(msg)).toEqual(ed25519Sign(seed, msg, 'pure'));
      expect(pure(msg)).toEqual(ed25519Sign(seed, msg, 'native'));
      const viaCache = signFingerprint(text, key);
      try {
        setNativeCryptoEnabled(false);
        expect(signFingerprint(text, key)).toBe(viaCache);
      } finally {
        setNativeCryptoEnabled(true);
      }
      expect(signFingerprint(text, key, 'pure')).toBe(viaCache);
    }
  });
});

describeWithSodium('libsodium back end (sodium-native)', () => {
  it('libsodium itself, the other back ends and the default agree on hostile inputs', () => {
    const { msg, cases } = hostileCases();
    const sodium = nativeSodium()!;
    for (const [key, s] of cases) {
      const expected = ed25519Verify(key, msg, s, 'pure');
      // The library Nix links, called directly (wrong lengths throw there: a rejection).
      let raw: boolean;
      try {
        raw = sodium.crypto_sign_verify_detached(s, msg, key);
      } catch {
        raw = false;
      }
      expect(raw).toBe(expected);
      expect(ed25519Verify(key, msg, s, 'sodium')).toBe(expected);
      expect(ed25519Verify(key, msg, s)).toBe(expected);
    }
  });

  it('agrees with libsodium called directly and with OpenSSL on random keys and bit flips (property)', () => {
    const sodium = nativeSodium()!;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.nat(767),
        (seed, msg, flip) => {
          const pk = ed25519PublicKey(seed);
          const sig = ed25519Sign(seed, msg);
          expect(ed25519Verify(pk, msg, sig, 'sodium')).toBe(true);
          const [bad, badKey] = [sig.slice(), pk.slice()];
          if (flip < 512) bad[flip >> 3] = bad[flip >> 3]! ^ (1 << (flip & 7));
          else badKey[(flip - 512) >> 3] = badKey[(flip - 512) >> 3]! ^ (1 << (flip & 7));
          const ours = ed25519Verify(badKey, msg, bad, 'sodium');
          expect(ours).toBe(sodium.crypto_sign_verify_detached(bad, msg, badKey));
          expect(ours).toBe(ed25519Verify(badKey, msg, bad, 'native'));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('signs exactly as OpenSSL and the pure back end do, and is the default signer (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 200 }),
        (seed, msg) => {
          const sig = ed25519Signer(seed, 'sodium')(msg);
          expect(sig).toEqual(ed25519Sign(seed, msg, 'native'));
          expect(sig).toEqual(ed25519Sign(seed, msg, 'pure'));
          expect(ed25519PublicKey(seed, 'sodium')).toEqual(ed25519PublicKey(seed, 'pure'));
          expect(ed25519Verify(ed25519PublicKey(seed), msg, sig, 'sodium')).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
    expect(defaultSignBackend()).toBe('sodium');
    const key = generateSecretKey('sodium-sign-1');
    const text = '1;/nix/store/x;sha256:y;1;';
    const bySodium = signFingerprint(text, key);
    try {
      setNativeSodiumEnabled(false);
      expect(defaultSignBackend()).toBe('native');
      expect(() => ed25519Signer(key.seed(), 'sodium')).toThrow(/not available/);
      // The cached signer of the key follows the default back end.
      expect(signFingerprint(text, key)).toBe(bySodium);
    } finally {
      setNativeSodiumEnabled(true);
    }
    expect(signFingerprint(text, key)).toBe(bySodium);
  });

  it('is the default for synchronous checks, and the others take over when it is disabled', () => {
    const key = generateSecretKey('sodium-1');
    const info = signNarInfo(parseNarInfo(vectors.canonical.text), key);
    expect(verifyNarInfo(info, [key.publicKey], { backend: 'sodium' }).signedBy).toEqual(['sodium-1']);
    try {
      setNativeSodiumEnabled(false);
      expect(() => ed25519Verify(key.publicKey.key, new Uint8Array(1), new Uint8Array(64), 'sodium')).toThrow(
        /not available/,
      );
      expect(verifyNarInfo(info, [key.publicKey]).signedBy).toEqual(['sodium-1']);
    } finally {
      setNativeSodiumEnabled(true);
    }
    expect(nativeSodium()).toBeDefined();
  });

  it('verifies all 978 cache.nixos.org signatures of the corpus', () => {
    const ring = makeKeyring([CACHE_NIXOS_ORG_KEY]);
    const texts = corpusNarInfos();
    expect(texts).toHaveLength(978);
    for (const text of texts) {
      expect(verifyNarInfo(parseNarInfo(text), ring, { backend: 'sodium' }).signedBy).toEqual([
        'cache.nixos.org-1',
      ]);
    }
  });
});
