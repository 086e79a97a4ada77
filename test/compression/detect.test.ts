/** detectCompression: the magic bytes of each codec's output (issue 10 item 9). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compress, detectCompression } from '../../src/compression/index.js';
import { collectBytes } from '../../src/internal/iter.js';
import { writeNar } from '../../src/nar/index.js';

describe('detectCompression', () => {
  for (const method of ['xz', 'zstd', 'bzip2', 'gzip'] as const) {
    it(`recognises what ${method} writes`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), async (data) => {
          const packed = await collectBytes(compress(method, data));
          expect(detectCompression(packed.subarray(0, 12))).toBe(method);
        }),
        { numRuns: method === 'bzip2' ? 5 : 20 },
      );
    });
  }

  it('recognises a bare NAR as none, and nothing for brotli, text or short input', async () => {
    const nar = await collectBytes(writeNar([{ path: '', type: 'regular', contents: new Uint8Array(3) }]));
    expect(detectCompression(nar)).toBe('none');
    expect(detectCompression(await collectBytes(compress('br', nar)))).toBeUndefined();
    expect(detectCompression(new TextEncoder().encode('StorePath: /nix/store/…'))).toBeUndefined();
    expect(detectCompression(new Uint8Array([0xfd, 0x37]))).toBeUndefined();
  });
});
