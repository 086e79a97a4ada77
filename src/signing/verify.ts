/**
 * Checking narinfo trust as Nix does (nix-formats.md §5.3-5.4): a path is trusted when at least one
 * signature by a trusted key verifies, or when its CA claim recomputes to its store path and the
 * narinfo itself proves the CA hash (a `fixed:r:` claim with NarHash's algorithm must equal
 * NarHash). A claim whose hash covers what only the NAR shows (text, flat, NAR with another
 * algorithm) is provisional: it makes the path trusted only once the contents were checked
 * (`verifyCache` with contents, `copyPaths`). Malformed signatures are reported, never counted
 * and never thrown.
 */
import { NixcacheError } from '../errors.js';
import { formatHash, hashEquals } from '../hash/hash.js';
import { fromBase64Lenient, utf8 } from '../internal/bytes.js';
import { narInfoFingerprint, storeDirOf } from '../narinfo/fingerprint.js';
import type { NarInfo } from '../narinfo/types.js';
import { parseContentAddress } from '../store-path/content-address.js';
import { storePathForContentAddress } from '../store-path/make.js';
import { parseStorePath } from '../store-path/store-path.js';
import { type Ed25519Backend, ed25519Verify, ed25519VerifyAsync } from './ed25519.js';
import { type PublicKey, parsePublicKey } from './keys.js';

/** Trusted keys by name. For a duplicate name the first key wins, as in Nix. */
export type Keyring = ReadonlyMap<string, PublicKey>;

/** Anything accepted as the set of trusted keys. */
export type TrustedKeys = Keyring | Iterable<PublicKey | string>;

export interface InvalidSignature {
  readonly signature: string;
  readonly keyName: string;
  readonly reason: string;
}

export interface NarInfoVerification {
  /**
   * At least one valid trusted signature, or a CA claim that holds and that the narinfo alone
   * proves (`contentAddressed` without `contentAddressNeedsContents`); never when the CA claim
   * contradicts NarHash (see `contentAddressContradiction`), which no signature can repair.
   */
  readonly trusted: boolean;
  /** Names of the trusted keys whose signatures verified. */
  readonly signedBy: readonly string[];
  /** Signatures by trusted key names that failed or could not be decoded. */
  readonly invalidSignatures: readonly InvalidSignature[];
  /** Signatures by keys that are not trusted (not checked). */
  readonly unknownSignatures: readonly string[];
  /** The CA claim recomputes to the store path and nothing in the narinfo contradicts it. */
  readonly contentAddressed: boolean;
  /**
   * True when the claim holds so far but its hash covers data only the NAR shows (text, flat, or
   * a NAR hash with another algorithm than NarHash): it does not make the path trusted until the
   * contents were hashed and matched.
   */
  readonly contentAddressNeedsContents?: boolean;
  /** Why a CA claim did not hold, when there is one. */
  readonly contentAddressProblem?: string;
}

/**
 * Builds a keyring from public keys or their text forms.
 *
 * @throws {NixcacheError} BAD_KEY for a malformed key text.
 * @example makeKeyring(['cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY='])
 */
export function makeKeyring(keys: TrustedKeys): Keyring {
  if (keys instanceof Map) return keys;
  const ring = new Map<string, PublicKey>();
  for (const k of keys as Iterable<PublicKey | string>) {
    const key = typeof k === 'string' ? parsePublicKey(k) : k;
    if (!ring.has(key.name)) ring.set(key.name, key);
  }
  return ring;
}

/**
 * Why the narinfo contradicts its own CA claim: a `fixed:r:<algo>` claim with NarHash's algorithm
 * whose hash differs from NarHash (Nix refuses such a path on import: "ca hash mismatch"), or a
 * claim that does not parse. Undefined when there is no claim or nothing contradicts it.
 *
 * @example contentAddressContradiction(info) // 'CA hash sha256:… does not match NarHash sha256:…'
 */
export function contentAddressContradiction(info: NarInfo): string | undefined {
  if (info.ca === undefined) return undefined;
  let ca: ReturnType<typeof parseContentAddress>;
  try {
    ca = parseContentAddress(info.ca);
  } catch (e) {
    if (e instanceof NixcacheError) return e.message;
    throw e;
  }
  if (
    ca.method === 'nar' &&
    ca.hash.algorithm === info.narHash.algorithm &&
    !hashEquals(ca.hash, info.narHash)
  )
    return `CA hash ${formatHash(ca.hash)} does not match NarHash ${formatHash(info.narHash)}`;
  return undefined;
}

interface ContentAddressCheck {
  /** Why the claim does not hold. */
  readonly problem?: string;
  /** The narinfo contradicts itself: no signature can make it valid. */
  readonly contradiction?: boolean;
  /** The claim holds so far, but only the contents can prove it. */
  readonly needsContents?: boolean;
}

function checkContentAddress(info: NarInfo): ContentAddressCheck {
  if (info.ca === undefined) return { problem: 'no CA claim' };
  const contradiction = contentAddressContradiction(info);
  if (contradiction !== undefined) return { problem: contradiction, contradiction: true };
  try {
    const storeDir = storeDirOf(info.storePath);
    const sp = parseStorePath(info.storePath, storeDir);
    const own = `${sp.hash}-${sp.name}`;
    const others = info.references.filter((r) => r !== own).map((r) => `${storeDir}/${r}`);
    const self = others.length !== info.references.length;
    const computed = storePathForContentAddress(sp.name, info.ca, others, { self, storeDir });
    if (computed !== info.storePath) return { problem: `CA claim computes to ${computed}` };
    const ca = parseContentAddress(info.ca);
    // Only a NAR hash in NarHash's algorithm is proved by the narinfo (NarHash is what the NAR
    // is checked against); any other hash covers bytes nobody has looked at yet.
    return ca.method === 'nar' && ca.hash.algorithm === info.narHash.algorithm ? {} : { needsContents: true };
  } catch (e) {
    if (e instanceof NixcacheError) return { problem: e.message };
    throw e;
  }
}

/** A signature by a trusted key name, decoded and ready for the curve check. */
interface PendingCheck {
  /** Position among the narinfo's signatures, so reports keep the file's order. */
  readonly order: number;
  readonly signature: string;
  readonly keyName: string;
  readonly key: PublicKey;
  readonly bytes: Uint8Array;
}

interface Triage {
  readonly message: Uint8Array | undefined;
  readonly pending: readonly PendingCheck[];
  readonly invalidSignatures: (InvalidSignature & { order: number })[];
  readonly unknownSignatures: string[];
}

/** Sorts the signatures into unknown keys, malformed ones, and those to check on the curve. */
function triage(info: NarInfo, ring: Keyring): Triage {
  const invalidSignatures: (InvalidSignature & { order: number })[] = [];
  const unknownSignatures: string[] = [];
  const pending: PendingCheck[] = [];
  let order = 0;
  let message: Uint8Array | undefined;
  let fingerprintProblem: string | undefined;
  try {
    message = utf8(narInfoFingerprint(info));
  } catch (e) {
    if (!(e instanceof NixcacheError)) throw e;
    fingerprintProblem = e.message;
  }
  for (const signature of new Set(info.sigs)) {
    order++;
    const colon = signature.indexOf(':');
    const keyName = colon < 0 ? '' : signature.slice(0, colon);
    const key = ring.get(keyName);
    if (!key) {
      if (colon <= 0)
        invalidSignatures.push({ order, signature, keyName, reason: 'not of the form <key name>:<base64>' });
      else unknownSignatures.push(signature);
      continue;
    }
    let bytes: Uint8Array;
    try {
      bytes = fromBase64Lenient(signature.slice(colon + 1));
    } catch {
      invalidSignatures.push({ order, signature, keyName, reason: 'signature is not valid base64' });
      continue;
    }
    if (bytes.length !== 64) {
      invalidSignatures.push({
        order,
        signature,
        keyName,
        reason: `signature has ${bytes.length} bytes, expected 64`,
      });
    } else if (!message) {
      invalidSignatures.push({ order, signature, keyName, reason: fingerprintProblem ?? 'no fingerprint' });
    } else {
      pending.push({ order, signature, keyName, key, bytes });
    }
  }
  return { message, pending, invalidSignatures, unknownSignatures };
}

/** The verdict, once each pending signature has been checked (`valid[i]` for `pending[i]`). */
function verdict(info: NarInfo, t: Triage, valid: readonly boolean[]): NarInfoVerification {
  const signedBy: string[] = [];
  const invalid = [...t.invalidSignatures];
  t.pending.forEach((p, i) => {
    if (valid[i]) {
      if (!signedBy.includes(p.keyName)) signedBy.push(p.keyName);
    } else {
      const reason = 'signature does not match the narinfo';
      invalid.push({ order: p.order, signature: p.signature, keyName: p.keyName, reason });
    }
  });
  const invalidSignatures = invalid.sort((a, b) => a.order - b.order).map(({ order: _, ...rest }) => rest);
  const ca: ContentAddressCheck = info.ca === undefined ? {} : checkContentAddress(info);
  const contentAddressed = info.ca !== undefined && ca.problem === undefined;
  return {
    // A narinfo whose CA hash contradicts its NarHash can never be imported, whoever signed it.
    trusted: !ca.contradiction && (signedBy.length > 0 || (contentAddressed && !ca.needsContents)),
    signedBy,
    invalidSignatures,
    unknownSignatures: t.unknownSignatures,
    contentAddressed,
    ...(ca.needsContents && { contentAddressNeedsContents: true }),
    ...(ca.problem !== undefined && { contentAddressProblem: ca.problem }),
  };
}

/**
 * Verifies a narinfo's signatures against trusted keys and checks its CA claim. A claim whose
 * hash only the contents can prove is reported (`contentAddressNeedsContents`) but does not make
 * the narinfo trusted: the caller hashes the NAR and decides.
 *
 * @throws {NixcacheError} BAD_KEY only when a trusted key given as text is malformed.
 * @example verifyNarInfo(info, ['cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=']).trusted
 */
export function verifyNarInfo(
  info: NarInfo,
  trustedKeys: TrustedKeys,
  options: { backend?: Ed25519Backend } = {},
): NarInfoVerification {
  const t = triage(info, makeKeyring(trustedKeys));
  const valid = t.pending.map((p) => ed25519Verify(p.key.key, t.message!, p.bytes, options.backend));
  return verdict(info, t, valid);
}

/**
 * `verifyNarInfo` for platforms whose native Ed25519 is asynchronous: uses WebCrypto where
 * node:crypto is absent (browsers, edge workers), the same sync path otherwise. Same results.
 *
 * @throws {NixcacheError} BAD_KEY only when a trusted key given as text is malformed.
 * @example (await verifyNarInfoAsync(info, [key])).trusted
 */
export async function verifyNarInfoAsync(
  info: NarInfo,
  trustedKeys: TrustedKeys,
  options: { backend?: Ed25519Backend | 'webcrypto' } = {},
): Promise<NarInfoVerification> {
  const t = triage(info, makeKeyring(trustedKeys));
  const valid = await Promise.all(
    t.pending.map((p) => ed25519VerifyAsync(p.key.key, t.message!, p.bytes, options.backend)),
  );
  return verdict(info, t, valid);
}
