/**
 * Decompression bombs for the resource-limit tests: small inputs that expand to gigabytes of
 * zeros, one per method, built in memory in well under a second (no codec CLI needed).
 */
import { compress } from '../../src/compression/index.js';
import { collectBytes } from '../../src/internal/iter.js';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

/**
 * A zstd frame of `size` zero bytes made of RLE blocks (4 bytes per 128 KiB: 2 GiB in 64 KiB),
 * without a content size, as the `zstd` CLI writes a stream of zeros.
 */
export function zstdZeros(size: number): Uint8Array {
  const BLOCK = 128 * 1024;
  const blocks = Math.max(1, Math.ceil(size / BLOCK));
  const out = new Uint8Array(6 + blocks * 4);
  out.set([0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3], 0); // magic, FHD (nothing), window 2^17
  for (let i = 0; i < blocks; i++) {
    const n = Math.min(BLOCK, size - i * BLOCK);
    const header = (n << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0); // RLE block
    out.set([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff, 0], 6 + i * 4);
  }
  return out;
}

/** `bzip2 -9` of 256 MiB of zeros (208 bytes, made with bzip2 1.0.8). */
const BZIP2_256_MIB_ZEROS = Buffer.from(
  'QlpoOTFBWSZTWQ4J4t8BX45AAMAAAAggADCATUZCoCWpCoCXMUFZJlNZDgni3wFfjkAAwAAACCAAMIBNRkKgJakKgJcxQVkmU1kOCeLfAV+OQADAAAAIIAAwgE1GQqAlqQqAlzFBWSZTWQ4J4t8BX45AAMAAAAggADCATUZCoCWpCoCXMUFZJlNZDgni3wFfjkAAwAAACCAAMIBNRkKgJakKgJcxQVkmU1kezuTbASo/wADABAAIIAAwzAUppqqoSRsAIkjxdyRThQkGsXyvAA==',
  'base64',
);

/** Concatenates `n` copies (valid for the formats that accept concatenated streams/members). */
export function repeat(bytes: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(bytes.length * n);
  for (let i = 0; i < n; i++) out.set(bytes, i * bytes.length);
  return out;
}

async function* zeros(total: number): AsyncGenerator<Uint8Array> {
  const chunk = new Uint8Array(4 * MiB);
  for (let sent = 0; sent < total; sent += chunk.length)
    yield chunk.subarray(0, Math.min(chunk.length, total - sent));
}

/**
 * A bomb of `method` that decompresses to 2 GiB of zeros (br: 512 MiB, since brotli streams do
 * not concatenate and compressing more takes seconds).
 */
export async function bomb(method: string): Promise<{ bytes: Uint8Array; expands: number }> {
  switch (method) {
    case 'zstd':
      return { bytes: zstdZeros(2 * GiB), expands: 2 * GiB };
    case 'bzip2':
      return { bytes: repeat(BZIP2_256_MIB_ZEROS, 8), expands: 2 * GiB };
    case 'xz':
    case 'gzip': {
      const one = await collectBytes(compress(method, zeros(64 * MiB), { level: method === 'xz' ? 0 : 9 }));
      return { bytes: repeat(one, 32), expands: 2 * GiB };
    }
    case 'br':
      return {
        bytes: await collectBytes(compress('br', zeros(512 * MiB), { level: 5 })),
        expands: 512 * MiB,
      };
    default:
      // `none` has no expansion: a 2 GiB input is as large as its output.
      throw new Error(`no bomb for ${method}`);
  }
}
