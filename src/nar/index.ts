/**
 * `nixcache/nar`: the NAR format (nix-formats.md §6) and what is computed from NARs — listings
 * (§7.1), NarHash/NarSize and references. Pure: no node:* imports, runs in browsers.
 */
export { type HashNarOptions, hashNar, type NarHashResult } from './hash.js';
export {
  type FormatNarListingOptions,
  formatNarListing,
  type NarListing,
  NarListingBuilder,
  type NarListingDirectory,
  type NarListingNode,
  type NarListingRegular,
  type NarListingStub,
  type NarListingSymlink,
  narListing,
  parseNarListing,
} from './listing.js';
export {
  decodeNar,
  NarDecoder,
  type NarEntry,
  type NarEntryType,
  type NarNode,
  type NarVisitor,
  type ReadNarOptions,
  readNar,
} from './read.js';
export {
  createReferenceScanner,
  ReferenceCandidates,
  type ReferenceScanner,
  scanReferences,
} from './references.js';
export {
  NAR_MAGIC,
  NAR_MAX_DEPTH,
  NAR_MAX_NAME_LENGTH,
  NAR_MAX_TAG_LENGTH,
  NAR_MAX_TARGET_LENGTH,
} from './wire.js';
export {
  NarEncoder,
  type NarEncoderOptions,
  type NarWriteEntry,
  type WriteNarOptions,
  writeNar,
} from './write.js';
