export {
  type Ed25519Backend,
  ed25519Sign,
  ed25519Signer,
  ed25519Verify,
  ed25519VerifyAsync,
  setNativeVerifyConcurrency,
} from './ed25519.js';
export {
  formatPublicKey,
  formatSecretKey,
  generateSecretKey,
  type PublicKey,
  parsePublicKey,
  parseSecretKey,
  SecretKey,
  toPublicKey,
} from './keys.js';
export { signFingerprint, signNarInfo } from './sign.js';
export {
  type InvalidSignature,
  type Keyring,
  makeKeyring,
  type NarInfoVerification,
  type TrustedKeys,
  verifyNarInfo,
  verifyNarInfoAsync,
} from './verify.js';
export { type NarInfoVerdict, type VerifyNarInfosOptions, verifyNarInfos } from './verify-batch.js';
