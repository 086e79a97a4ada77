/**
 * The test S3 server: s3rver 3.7.1 run as a child process on 127.0.0.1 with a fresh temporary
 * directory (issue 5, "The test S3 server"). It runs with `--openssl-legacy-provider` because
 * s3rver encrypts ListObjectsV2 continuation tokens with DES, so listings of more than 1000 keys
 * answer 500 without it. It accepts the access key `S3RVER` (any secret; it checks no v4
 * signatures) and allows anonymous GET.
 *
 * What s3rver lacks (measured): bucket policies and lifecycle rules (501 NotImplemented),
 * conditional writes (`If-Match`/`If-None-Match` are ignored), AbortMultipartUpload (405) and
 * ListMultipartUploads (501).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Access key and secret s3rver accepts. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** A running s3rver child process. */
export interface S3rverHandle {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly port: number;
  /** Its data directory (removed by `stop()`). */
  readonly dir: string;
  /** Child process id (for diagnostics). */
  readonly pid: number | undefined;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /** SIGKILLs the server (for fault tests); the directory is kept for `restart()`. */
  kill(): void;
  /** Starts the server again on the same port and directory (after `kill()` or `stop({ keep })`). */
  restart(): Promise<void>;
}

export interface StartS3rverOptions {
  /** Buckets to create at startup. */
  readonly buckets?: readonly string[];
  /** Port to listen on (default: a free port chosen by the OS). */
  readonly port?: number;
  /** Data directory (default: a fresh temporary directory, removed by `stop()`). */
  readonly dir?: string;
  /** Milliseconds to wait for the server to listen (default 15000). */
  readonly timeoutMs?: number;
}

const runnerPath = join(dirname(fileURLToPath(import.meta.url)), 's3rver-runner.cjs');

function spawnServer(
  dir: string,
  port: number,
  buckets: readonly string[],
  timeoutMs: number,
): Promise<{ child: ChildProcess; port: number }> {
  // Resolve s3rver here so a missing devDependency fails with a clear message.
  createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', runnerPath, dir, String(port), ...buckets],
    { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`s3rver did not start within ${timeoutMs} ms: ${err || out}`));
    }, timeoutMs);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        const { port: actual } = JSON.parse(out.slice(0, nl)) as { port: number };
        resolve({ child, port: actual });
      } catch (e) {
        reject(new Error(`unexpected output from s3rver: ${out}`, { cause: e }));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited before listening (code ${code}, signal ${signal}): ${err}`));
    });
  });
}

/**
 * Starts s3rver as a child process on 127.0.0.1 and waits until it listens.
 *
 * @throws {Error} when s3rver is not installed or does not start in time.
 * @example
 * const s3 = await startS3rver({ buckets: ['cache'] });
 * try { … s3.endpoint … } finally { await s3.stop(); }
 */
export async function startS3rver(options: StartS3rverOptions = {}): Promise<S3rverHandle> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'nixcache-s3rver-'));
  const buckets = options.buckets ?? [];
  const timeoutMs = options.timeoutMs ?? 15_000;
  let { child, port } = await spawnServer(dir, options.port ?? 0, buckets, timeoutMs);
  const running = new Set<ChildProcess>([child]);
  const exited = (c: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) resolve();
      else c.once('exit', () => resolve());
    });
  const handle: S3rverHandle = {
    get endpoint() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dir,
    get pid() {
      return child.pid;
    },
    async stop() {
      for (const c of running) {
        c.kill('SIGTERM');
        const done = exited(c);
        const t = setTimeout(() => c.kill('SIGKILL'), 3000);
        await done;
        clearTimeout(t);
      }
      running.clear();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
    kill() {
      child.kill('SIGKILL');
    },
    async restart() {
      await exited(child);
      running.delete(child);
      // The port may stay busy for a moment after a kill; retry briefly.
      for (let attempt = 0; ; attempt++) {
        try {
          ({ child, port } = await spawnServer(dir, port, buckets, timeoutMs));
          running.add(child);
          return;
        } catch (e) {
          if (attempt >= 20) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
  return handle;
}

/** What a test needs to talk to a bucket on a test server. */
export interface S3TestConfig {
  /** A store URL: `s3://bucket[/prefix]?endpoint=http://127.0.0.1:PORT&region=us-east-1`. */
  readonly url: string;
  /** Credentials s3rver accepts, for `new S3Backend(config, { credentials })`. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** The same as environment variables, for child processes (the CLI, real Nix). */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Store URL, credentials and environment for a bucket on a test server.
 *
 * @example
 * const { url, credentials } = s3ConfigFor(s3.endpoint, 'cache', 'some/prefix');
 * const backend = new S3Backend(parseStoreUrl(url), { credentials });
 */
export function s3ConfigFor(endpoint: string, bucket: string, prefix = ''): S3TestConfig {
  const path = prefix ? `${bucket}/${prefix}` : bucket;
  return {
    url: `s3://${path}?endpoint=${endpoint}&region=us-east-1`,
    credentials: { ...S3RVER_CREDENTIALS },
    env: {
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
    },
  };
}
