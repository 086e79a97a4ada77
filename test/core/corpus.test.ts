import fc from 'fast-check';
import { expect, it } from 'vitest';
import {
  formatNarInfo,
  makeKeyring,
  type NarInfo,
  NixcacheError,
  parseNarInfo,
  renderNarInfo,
  verifyNarInfo,
  verifyNarInfoAsync,
} from '../../src/index.js';
import { fromBase64Lenient, toBase64 } from '../../src/internal/bytes.js';
import { encodeNix32, NIX32_ALPHABET } from '../../src/nix32.js';
import { CACHE_NIXOS_ORG_KEY, corpusNarInfos } from '../helpers/corpus.js';
import { describeWithCorpus } from '../helpers/env.js';

describeWithCorpus('978 real cache.nixos.org narinfos', () => {
  const texts = corpusNarInfos();
  const ring = makeKeyring([CACHE_NIXOS_ORG_KEY]);
  const infos = texts.map((t, i) => parseNarInfo(t, { source: `corpus #${i}` }));

  it('has all of them', () => expect(texts).toHaveLength(978));

  it('parses and round-trips each byte for byte', () => {
    for (let i = 0; i < texts.length; i++) expect(formatNarInfo(infos[i]!)).toBe(texts[i]);
  });

  it('writes Nix-canonical text for each, which differs only by the legacy System: lines', () => {
    let withSystem = 0;
    for (let i = 0; i < texts.length; i++) {
      const canonical = renderNarInfo(infos[i]!);
      if (texts[i]!.includes('\nSystem: ')) {
        withSystem++;
        expect(canonical).toBe(texts[i]!.replace(/^System: .*\n/m, ''));
      } else expect(canonical).toBe(texts[i]);
    }
    expect(withSystem).toBe(8);
  });

  it('verifies every signature with cache.nixos.org-1, on both Ed25519 back ends', () => {
    for (const backend of ['native', 'pure'] as const) {
      for (const info of infos) {
        const result = verifyNarInfo(info, ring, { backend });
        expect(result.signedBy).toEqual(['cache.nixos.org-1']);
        expect(result.invalidSignatures).toEqual([]);
      }
    }
  });

  it('verifies every signature through verifyNarInfoAsync with WebCrypto too', async () => {
    for (const info of infos) {
      const result = await verifyNarInfoAsync(info, ring, { backend: 'webcrypto' });
      expect(result.signedBy).toEqual(['cache.nixos.org-1']);
    }
  });

  function reparse(info: NarInfo, changes: Partial<NarInfo>): NarInfo {
    return parseNarInfo(formatNarInfo({ ...info, ...changes }));
  }

  function flipSignatureByte(sig: string, at: number): string {
    const colon = sig.indexOf(':');
    const bytes = fromBase64Lenient(sig.slice(colon + 1));
    bytes[at] = bytes[at]! ^ 0x01;
    return `${sig.slice(0, colon + 1)}${toBase64(bytes)}`;
  }

  function otherNix32Char(c: string): string {
    return NIX32_ALPHABET[(NIX32_ALPHABET.indexOf(c) + 1) % 32]!;
  }

  it('becomes untrusted when any one byte of the signature, NarHash, NarSize or a reference changes', () => {
    const rng = fc.sample(fc.nat(1 << 30), { numRuns: texts.length * 4, seed: 42 });
    infos.forEach((info, i) => {
      const pick = (k: number, n: number) => rng[i * 4 + k]! % n;
      const sig = flipSignatureByte(info.sigs[0]!, pick(0, 64));
      const digest = info.narHash.digest.slice();
      digest[pick(1, 32)] = digest[pick(1, 32)]! ^ 0x80;
      const sizeText = String(info.narSize);
      const at = pick(2, sizeText.length);
      const newDigit = String((Number(sizeText[at]) + 1) % 10);
      const narSize = Number(sizeText.slice(0, at) + newDigit + sizeText.slice(at + 1)) || info.narSize + 1;
      const mutants: Partial<NarInfo>[] = [
        { sigs: [sig] },
        { narHash: { algorithm: 'sha256', digest } },
        { narSize },
      ];
      if (info.references.length > 0) {
        const refs = [...info.references];
        const r = pick(3, refs.length);
        const pos = pick(3, 32);
        refs[r] = refs[r]!.slice(0, pos) + otherNix32Char(refs[r]![pos]!) + refs[r]!.slice(pos + 1);
        mutants.push({ references: refs });
      }
      for (const change of mutants) {
        const result = verifyNarInfo(reparse(info, change), ring);
        expect(result.signedBy, `narinfo #${i} changed ${Object.keys(change)[0]}`).toEqual([]);
        expect(result.trusted && !result.contentAddressed).toBe(false);
      }
    });
  });

  it('becomes untrusted for every single-byte flip of signature and NarHash (first 40 narinfos)', () => {
    for (const info of infos.slice(0, 40)) {
      for (let at = 0; at < 64; at++) {
        expect(
          verifyNarInfo({ ...info, sigs: [flipSignatureByte(info.sigs[0]!, at)] }, ring).signedBy,
        ).toEqual([]);
      }
      for (let at = 0; at < 32; at++) {
        const digest = info.narHash.digest.slice();
        digest[at] = digest[at]! ^ 0x01;
        expect(verifyNarInfo({ ...info, narHash: { algorithm: 'sha256', digest } }, ring).signedBy).toEqual(
          [],
        );
      }
    }
  });

  it('never crashes with anything but NixcacheError on random mutations of real narinfos (property)', () => {
    const runs = Number(process.env.NIXCACHE_FUZZ_RUNS ?? 3000);
    fc.assert(
      fc.property(
        fc.nat(texts.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 6 }), fc.string({ maxLength: 3 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (index, edits) => {
          let text = texts[index]!;
          for (const [pos, kind, str] of edits) {
            const at = pos % (text.length + 1);
            if (kind === 0) text = text.slice(0, at) + text.slice(at + 1);
            else if (kind === 1) text = text.slice(0, at) + str + text.slice(at);
            else if (kind === 2)
              text = text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ 1) + text.slice(at + 1);
            else if (kind === 3)
              text = text.slice(0, at) + ['\n', ':', ' ', '\r', '='][pos % 5] + text.slice(at + 1);
            else if (kind === 4) text = text.slice(0, at);
            else if (kind === 5) text = text.slice(0, at) + text.slice(at).replace(/\n/, '\n\n');
            else text = text.slice(0, at) + encodeNix32(new Uint8Array([pos & 255])) + text.slice(at);
          }
          try {
            const info = parseNarInfo(text);
            verifyNarInfo(info, ring);
            expect(parseNarInfo(formatNarInfo(info)).storePath).toBe(info.storePath);
          } catch (e) {
            expect(e).toBeInstanceOf(NixcacheError);
          }
        },
      ),
      { numRuns: runs },
    );
  });
});
