export {
  type ContentAddress,
  type ContentAddressMethod,
  formatContentAddress,
  parseContentAddress,
} from './content-address.js';
export {
  makeFixedOutputPath,
  makeSourcePath,
  makeStorePath,
  makeTextPath,
  storePathForContentAddress,
} from './make.js';
export {
  formatStorePath,
  HASH_PART_LENGTH,
  isHashPart,
  MAX_NAME_LENGTH,
  parseStorePath,
  parseStorePathBasename,
  STORE_DIR,
  type StorePath,
  storePathBasename,
  storePathNameProblem,
} from './store-path.js';
