/**
 * Child process of bombs.test.ts: decompresses one bomb and prints, as JSON, how far the resident
 * set grew above where it was once the bomb was built, how many bytes came out, and the error.
 * Usage: bomb-child.ts METHOD LIMIT|none [slice]
 */
import { decompress } from '../../src/compression/index.js';
import { NixcacheError } from '../../src/errors.js';
import { bomb } from './bombs.js';

const [method = 'zstd', limitArg = 'none'] = process.argv.slice(2);
const { bytes, expands } = await bomb(method);
(globalThis as { gc?: () => void }).gc?.();
const before = process.memoryUsage.rss();
let peak = before;
const timer = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss());
}, 2);
async function* source(): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += 64 * 1024) yield bytes.subarray(at, at + 64 * 1024);
}
let output = 0;
let error: { code: string; message: string } | undefined;
try {
  const options = limitArg === 'none' ? {} : { maxOutputBytes: Number(limitArg) };
  for await (const chunk of decompress(method, source(), options)) {
    output += chunk.length;
    peak = Math.max(peak, process.memoryUsage.rss());
  }
} catch (e) {
  error = { code: e instanceof NixcacheError ? e.code : 'UNTYPED', message: (e as Error).message };
}
clearInterval(timer);
peak = Math.max(peak, process.memoryUsage.rss());
console.log(JSON.stringify({ method, input: bytes.length, expands, output, growth: peak - before, error }));
