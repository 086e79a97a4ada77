/**
 * A loopback HTTP binary-cache server for tests: serves a directory with GET/HEAD, accepts PUT and
 * DELETE (like a WebDAV-ish cache Nix can upload to), and records every request.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, normalize } from 'node:path';

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
}

export interface TestHttpServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Content-Type each stored key was uploaded with. */
  readonly contentTypes: Map<string, string>;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Starts the server on 127.0.0.1 with a random port, serving `root`. */
export async function startHttpCache(
  root: string,
  options: {
    readOnly?: boolean;
    /** Milliseconds to wait before answering a request for this key (default none). */
    delayMs?: (key: string) => number;
  } = {},
): Promise<TestHttpServer> {
  const requests: RecordedRequest[] = [];
  const contentTypes = new Map<string, string>();
  const server: Server = createServer(async (req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const key = decodeURIComponent((req.url ?? '/').split('?')[0]!.slice(1));
    const path = normalize(join(root, key));
    if (!path.startsWith(root) || key.includes('..')) {
      res.writeHead(400).end();
      return;
    }
    const delay = options.delayMs?.(key) ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    try {
      if (req.method === 'GET' || req.method === 'HEAD') {
        const s = await stat(path).catch(() => undefined);
        if (!s?.isFile()) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, {
          'content-length': s.size,
          'content-type': contentTypes.get(key) ?? 'application/octet-stream',
          etag: `"${s.mtimeMs}-${s.size}"`,
        });
        if (req.method === 'HEAD') res.end();
        else createReadStream(path).pipe(res);
      } else if (req.method === 'PUT' && !options.readOnly) {
        const body = await readBody(req);
        await mkdir(dirname(path), { recursive: true });
        await writeFile(`${path}.part`, body);
        await rename(`${path}.part`, path);
        contentTypes.set(key, String(req.headers['content-type'] ?? ''));
        res.writeHead(200).end();
      } else if (req.method === 'DELETE' && !options.readOnly) {
        await rm(path, { force: true });
        res.writeHead(204).end();
      } else {
        res.writeHead(405).end();
      }
    } catch {
      res.writeHead(500).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    contentTypes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
