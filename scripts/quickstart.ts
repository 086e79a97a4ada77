/**
 * `npm run quickstart`: the seed's whole binary-cache workflow on one machine with only Node —
 * no `nix`, no MinIO, no network. It makes a sample store (three paths with
 * references, fixtures/sample-store.ts), generates a signing key, starts an embedded S3 server
 * (s3rver, a dev dependency) on 127.0.0.1, and runs the same `nixcache` commands a user types:
 * `init`, `push`, `verify`, `path-info`. It ends with the nix.conf lines that point real Nix at
 * the cache. `npm run quickstart -- --serve` keeps the server running until Ctrl-C so that
 * `nix copy --from` can be tried against it; `--port N` picks the port.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { makeSampleStore } from '../fixtures/sample-store.js';
import { runCli } from '../src/cli/run.js';
import { S3RVER_CREDENTIALS, startS3rver } from '../test/helpers/s3rver.js';

const BUCKET = 'nix-cache';
const KEY_NAME = 'quickstart-1';

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const say = (line = '') => process.stdout.write(`${line}\n`);
const indent = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');

/** Shell-quotes an argument for display. */
function quote(arg: string): string {
  return /^[A-Za-z0-9_./:=@+-]+$/.test(arg) ? arg : `'${arg}'`;
}

/** Runs a nixcache command in this process (the same code as the `nixcache` binary). */
async function nixcache(args: string[], signal: AbortSignal): Promise<CliRun> {
  say(`  $ nixcache ${args.map(quote).join(' ')}`);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (d: Buffer) => out.push(d));
  stderr.on('data', (d: Buffer) => err.push(d));
  const code = await runCli(args, {
    stdout,
    stderr,
    stdin: Readable.from([]),
    env: { ...process.env, NIXCACHE_NO_PROGRESS: '1' },
    signal,
    version: 'quickstart',
  });
  stdout.end();
  stderr.end();
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

function check(step: string, run: CliRun): void {
  if (run.code !== 0) {
    process.stderr.write(run.stderr);
    throw new Error(`quick start failed at "${step}" (exit code ${run.code})`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { serve: { type: 'boolean' }, port: { type: 'string' } },
    strict: true,
  });
  const started = Date.now();
  // The AWS SDK's notice about future Node versions is noise here.
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (!/NodeVersionSupportWarning/.test(`${w.name} ${w.message}`))
      process.stderr.write(`warning: ${w.message}\n`);
  });
  const controller = new AbortController();
  const signal = controller.signal;
  const work = await mkdtemp(join(tmpdir(), 'nixcache-quickstart-'));
  let server: Awaited<ReturnType<typeof startS3rver>> | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    controller.abort();
    await server?.stop().catch(() => {});
    await rm(work, { recursive: true, force: true });
    process.exit(code);
  };
  process.on('SIGINT', () => {
    say('\nstopping the S3 server and removing the temporary files');
    void stop(0);
  });
  process.on('SIGTERM', () => void stop(0));

  try {
    say('nixcache quick start: a signed binary cache on an embedded S3 server (no nix, no network)');
    say();
    say('1. A sample store: hello -> greeting-lib -> greeting-data (hello needs a trusted signature)');
    const storeDir = join(work, 'store');
    await mkdir(storeDir);
    const sample = await makeSampleStore(storeDir);
    say(`    ${sample.hello}`);
    say(`    ${sample.lib}`);
    say(`    ${sample.data}`);
    say(`    (read from ${storeDir}, named as in /nix/store)`);
    say();

    say('2. A signing key');
    const keyFile = join(work, `${KEY_NAME}.secret`);
    const key = await nixcache(['key', 'generate', '--name', KEY_NAME, '--out', keyFile], signal);
    check('key generate', key);
    const publicKey = key.stdout.trim();
    say(`    public key: ${publicKey}`);
    say();

    say('3. An embedded S3 server (s3rver) on 127.0.0.1');
    const port = values.port === undefined ? 0 : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new Error(`--port: not a port: ${values.port}`);
    server = await startS3rver({ port });
    // s3rver accepts any credentials; these are its conventional ones, for this process only.
    process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;
    const httpUrl = `${server.endpoint}/${BUCKET}`;
    const storeUrl = `s3://${BUCKET}?endpoint=${server.endpoint}&region=us-east-1`;
    say(`    endpoint ${server.endpoint}, store URL ${storeUrl}`);
    say();

    say('4. Create the cache: bucket, nix-cache-info, anonymous read');
    const init = await nixcache(
      ['init', '--store', storeUrl, '--priority', '40', '--want-mass-query', '--public-read'],
      signal,
    );
    if (init.code !== 0) {
      if (!/bucket polic/i.test(init.stderr)) check('init', init);
      say('    note: s3rver has no bucket policies (it answers 501 NotImplemented), so --public-read');
      say('    cannot be set here; the bucket and nix-cache-info were created before that step.');
      say('    s3rver serves anonymous GETs anyway; on AWS S3 and MinIO the same command sets the');
      say('    anonymous-download policy.');
    } else say(indent(init.stdout));
    say();

    say('5. Push hello with its closure (references first, narinfo last), signed');
    const push = await nixcache(
      ['push', '--to', storeUrl, '--secret-key-file', keyFile, '--store-dir', storeDir, sample.hello],
      signal,
    );
    check('push', push);
    say(indent(push.stdout));
    say();

    say('6. Verify every path: trusted signature, NAR hashes and sizes');
    const verify = await nixcache(
      ['verify', '--store', storeUrl, '--trusted-public-key', publicKey, '--all'],
      signal,
    );
    check('verify', verify);
    say(indent(verify.stdout));
    say();

    const hashPart = sample.hello.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const narinfoUrl = `${httpUrl}/${hashPart}.narinfo`;
    say(`7. The narinfo of hello, downloaded anonymously as Nix will: ${narinfoUrl}`);
    const res = await fetch(narinfoUrl, { signal });
    if (!res.ok) throw new Error(`GET ${narinfoUrl} answered ${res.status}`);
    say(indent(await res.text()));
    say();

    say(
      `Done in ${((Date.now() - started) / 1000).toFixed(1)} s. To use this cache from Nix, add to nix.conf:`,
    );
    say();
    say(`extra-substituters = ${httpUrl}`);
    say(`extra-trusted-public-keys = ${publicKey}`);
    say();
    if (!values.serve) {
      say('The server stops now; run `npm run quickstart -- --serve` to keep it running and try:');
      say(
        `  nix copy --from ${httpUrl} --to /tmp/nixcache-try ${sample.hello} --option trusted-public-keys '${publicKey}'`,
      );
      await stop(0);
      return;
    }
    say('Try it with real Nix (into a scratch store, no root needed):');
    say(
      `  nix copy --from ${httpUrl} --to /tmp/nixcache-try ${sample.hello} --option trusted-public-keys '${publicKey}'`,
    );
    say();
    say(`serving ${httpUrl} until Ctrl-C`);
    await new Promise<never>(() => {
      setInterval(() => {}, 1 << 30);
    });
  } catch (e) {
    process.stderr.write(`quickstart: ${(e as Error).message}\n`);
    await stop(1);
  }
}

await main();
