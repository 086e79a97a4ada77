export {
  HASH_ALGORITHMS,
  HASH_SIZES,
  type HashAlgorithm,
  isHashAlgorithm,
  parseHashAlgorithm,
} from './algorithm.js';
export {
  compressHash,
  formatDigest,
  formatHash,
  type HashEncoding,
  hashEquals,
  type NixHash,
  parseHash,
} from './hash.js';
export { createHasher, type Hasher, hashBytes } from './hasher.js';
