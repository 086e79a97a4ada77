/**
 * A size cap on the S3 responses the AWS SDK reads whole before parsing (ListObjectsV2 pages,
 * bucket policies, lifecycle rules, error documents): a server that sends an endless or huge
 * body fails with `TOO_LARGE` naming the endpoint instead of filling memory (issue 10).
 * GetObject bodies are streams and are capped by their consumers instead.
 */
import { Transform } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { tooLarge } from './limits.js';

/** Commands whose response body is not read whole by the SDK. */
const STREAMED = new Set(['GetObjectCommand']);

interface RawResponse {
  response?: { body?: unknown; statusCode?: number; headers?: Record<string, string | undefined> };
}

/**
 * Adds the cap to `client`'s middleware stack (once per client), just inside the SDK's
 * deserializer, by wrapping the raw response body in a counting transform.
 */
export function capSdkResponses(client: S3Client, limit: number, endpoint: string): void {
  const stack = client.middlewareStack as unknown as {
    addRelativeTo(m: unknown, o: Record<string, unknown>): void;
  };
  const middleware =
    (next: (args: unknown) => Promise<RawResponse>, context: { commandName?: string }) =>
    async (args: unknown): Promise<RawResponse> => {
      const result = await next(args);
      const body = result.response?.body as NodeJS.ReadableStream | undefined;
      if (STREAMED.has(context.commandName ?? '') || !body || typeof body.pipe !== 'function') return result;
      // A declared length within the cap bounds the body already (the HTTP parser reads no
      // more than Content-Length): most responses (PutObject, HeadObject) are empty.
      const declared = Number(result.response?.headers?.['content-length'] ?? Number.NaN);
      if (Number.isInteger(declared) && declared >= 0 && declared <= limit) return result;
      let seen = 0;
      const what = `${context.commandName?.replace(/Command$/, '') ?? 'S3'} response`;
      const capped = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          seen += chunk.length;
          if (seen > limit) {
            (body as unknown as { destroy?: () => void }).destroy?.();
            callback(tooLarge(endpoint, limit, what, undefined, ''));
          } else callback(null, chunk);
        },
      });
      body.on('error', (e) => capped.destroy(e));
      result.response!.body = body.pipe(capped);
      return result;
    };
  stack.addRelativeTo(middleware, {
    relation: 'after',
    toMiddleware: 'deserializerMiddleware',
    name: 'nixcacheResponseCap',
    override: true,
  });
}
