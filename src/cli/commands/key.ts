/**
 * `nixcache key generate` (like `nix key generate-secret`) and `nixcache key public` (like
 * `nix key convert-secret-to-public`). The secret key is printed only by `key generate` without
 * `--out`; with `--out` it goes to a new file of mode 0600 and the public key is printed instead.
 */
import { open } from 'node:fs/promises';
import { NixcacheError } from '../../errors.js';
import {
  formatPublicKey,
  formatSecretKey,
  generateSecretKey,
  parseSecretKey,
  toPublicKey,
} from '../../signing/keys.js';
import { loadSecretKeys, readInputText } from '../common.js';
import { EXIT, UsageError, writeLine } from '../context.js';
import type { Command } from '../run.js';

const generate: Command = {
  spec: {
    name: 'key generate',
    summary: 'generate an Ed25519 signing key in Nix format',
    usage: ['--name NAME [--out FILE]'],
    details: [
      'Without --out the secret key is written to stdout (as `nix key generate-secret` does). With --out it is written to FILE, which must not exist yet, with mode 0600, and the public key is printed.',
      'By convention the name is the cache host name and a number, e.g. cache.example.org-1.',
    ],
    options: {
      name: {
        type: 'string',
        value: 'NAME',
        help: 'key name, e.g. cache.example.org-1 (required)',
        aliases: ['key-name'],
      },
      out: {
        type: 'string',
        short: 'o',
        value: 'FILE',
        help: 'write the secret key to FILE (mode 0600, never overwritten)',
      },
    },
    positionals: { max: 0 },
    examples: [
      'nixcache key generate --name cache.example.org-1 --out cache.secret',
      'nixcache key generate --name cache.example.org-1 > cache.secret',
    ],
  },
  async run(args, ctx) {
    const name = args.required('name');
    let key: ReturnType<typeof generateSecretKey>;
    try {
      key = generateSecretKey(name);
    } catch (e) {
      throw new UsageError(`--name: ${(e as Error).message}`, 'key generate');
    }
    const out = args.string('out');
    if (out === undefined) {
      await writeLine(ctx.stdout, formatSecretKey(key));
      return EXIT.ok;
    }
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(out, 'wx', 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new NixcacheError(
        'IO',
        code === 'EEXIST'
          ? `'${out}' already exists; refusing to overwrite a key file`
          : `cannot create '${out}': ${code ?? (e as Error).message}`,
        { file: out },
      );
    }
    try {
      await handle.chmod(0o600);
      await handle.writeFile(`${formatSecretKey(key)}\n`);
    } finally {
      await handle.close();
    }
    await writeLine(ctx.stdout, formatPublicKey(toPublicKey(key)));
    return EXIT.ok;
  },
};

const publicKey: Command = {
  spec: {
    name: 'key public',
    summary: 'print the public key of a secret key',
    usage: ['[--key-file FILE]  (reads the secret key from stdin without --key-file)'],
    options: {
      'key-file': {
        type: 'string',
        value: 'FILE',
        help: 'read the secret key from FILE instead of stdin',
        aliases: ['secret-key-file'],
      },
    },
    positionals: { max: 0 },
    examples: ['nixcache key public --key-file cache.secret', 'nixcache key public < cache.secret'],
  },
  async run(args, ctx) {
    const file = args.string('key-file');
    let key: ReturnType<typeof parseSecretKey>;
    if (file !== undefined) {
      [key] = (await loadSecretKeys([file], 'key public')) as [ReturnType<typeof parseSecretKey>];
    } else {
      if (ctx.stdin.isTTY)
        throw new UsageError('give --key-file FILE or pipe the secret key into stdin', 'key public');
      const text = await readInputText('-', ctx);
      try {
        key = parseSecretKey(text.trim());
      } catch (e) {
        throw new NixcacheError('BAD_KEY', `stdin: ${(e as Error).message}`);
      }
    }
    await writeLine(ctx.stdout, formatPublicKey(toPublicKey(key)));
    return EXIT.ok;
  },
};

export const commands: Readonly<Record<string, Command>> = {
  'key generate': generate,
  'key public': publicKey,
};
