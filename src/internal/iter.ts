/**
 * Stream plumbing shared by the stream layers: every byte source a caller may hand us (async or
 * sync iterables, web ReadableStreams, Node Readables, single buffers) becomes an
 * `AsyncIterable<Uint8Array>`. Not exported from the package.
 */

/** Anything nixcache accepts as a stream of bytes. */
export type ByteSource =
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>
  | ReadableStream<Uint8Array>
  | Uint8Array;

function isReadableStream(x: unknown): x is ReadableStream<Uint8Array> {
  return typeof (x as ReadableStream | undefined)?.getReader === 'function';
}

async function* fromReadableStream(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    // A consumer that stops early (or a failure) cancels the stream, which ends a fetch()
    // download instead of leaving its connection to fill buffers.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

async function* fromSync(items: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* items;
}

/** Normalises any ByteSource to an AsyncIterable of Uint8Array chunks (Node Buffers pass as is). */
export function toAsyncIterable(source: ByteSource): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) return fromSync([source]);
  if (Symbol.asyncIterator in (source as object)) return source as AsyncIterable<Uint8Array>;
  if (isReadableStream(source)) return fromReadableStream(source);
  return fromSync(source as Iterable<Uint8Array>);
}

/** Reads a whole source into one buffer; for small inputs and tests only. */
export async function collectBytes(source: ByteSource): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of toAsyncIterable(source)) {
    parts.push(chunk);
    total += chunk.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A web ReadableStream that pulls from an async iterable (for fetch request bodies). */
export function toReadableStream(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await it.next();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (e) {
        controller.error(e);
      }
    },
    async cancel(reason) {
      await it.return?.(reason);
    },
  });
}
