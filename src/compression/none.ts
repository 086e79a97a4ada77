/** The `none` method: NAR bytes stored as they are, no extension (nix-formats.md §7.1). */
import type { Codec } from './codec.js';

async function* passThrough(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) if (chunk.length > 0) yield chunk;
}

/** none: passes chunks through untouched. */
export const noneCodec: Codec = {
  compress: (source) => passThrough(source),
  decompress: (source) => passThrough(source),
};
