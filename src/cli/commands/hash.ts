/**
 * `nixcache hash path` (the NAR hash of a file tree, like `nix hash path`) and `nixcache hash
 * file` (the flat hash of a file's bytes, like `nix hash file`). Output encodings as in Nix:
 * SRI by default, `--base16`, `--base32` (Nix base32) or `--base64` without an algorithm prefix.
 */
import type { HashAlgorithm } from '../../hash/algorithm.js';
import { HASH_ALGORITHMS } from '../../hash/algorithm.js';
import { formatHash, type NixHash } from '../../hash/hash.js';
import { createHasher } from '../../hash/hasher.js';
import { hashPath } from '../../nar/node/hash-path.js';
import type { CommandSpec, ParsedArgs } from '../args.js';
import { openInput } from '../common.js';
import { EXIT, UsageError, writeLine } from '../context.js';
import type { Command } from '../run.js';

const ENCODING_OPTIONS = {
  type: { type: 'string', value: 'ALGO', help: 'hash algorithm: sha256 (default), sha512, sha1, md5' },
  sri: { type: 'boolean', help: 'print an SRI hash, e.g. sha256-…= (default)' },
  base16: { type: 'boolean', help: 'print the digest in hexadecimal' },
  base32: { type: 'boolean', help: 'print the digest in Nix base32' },
  base64: { type: 'boolean', help: 'print the digest in base64' },
} as const satisfies CommandSpec['options'];

function encodingOf(args: ParsedArgs, command: string): (hash: NixHash) => string {
  const chosen = (['sri', 'base16', 'base32', 'base64'] as const).filter((e) => args.flag(e));
  if (chosen.length > 1) throw new UsageError(`choose one of --${chosen.join(', --')}`, command);
  switch (chosen[0]) {
    case 'base16':
      return (h) => formatHash(h, 'base16').replace(/^[a-z0-9]+:/, '');
    case 'base32':
      return (h) => formatHash(h, 'nix32').replace(/^[a-z0-9]+:/, '');
    case 'base64':
      return (h) => formatHash(h, 'base64').replace(/^[a-z0-9]+:/, '');
    default:
      return (h) => formatHash(h, 'sri');
  }
}

function algorithmOf(args: ParsedArgs, command: string): HashAlgorithm {
  const type = args.string('type') ?? 'sha256';
  if (!(HASH_ALGORITHMS as readonly string[]).includes(type)) {
    throw new UsageError(
      `--type: unknown hash algorithm '${type}' (expected ${HASH_ALGORITHMS.join(', ')})`,
      command,
    );
  }
  return type as HashAlgorithm;
}

const path: Command = {
  spec: {
    name: 'hash path',
    summary: 'print the hash of the NAR serialisation of each PATH',
    usage: ['[--type ALGO] [--sri|--base16|--base32|--base64] PATH...'],
    details: ['The same as `nix hash path`: the NarHash of a store path, computed from the files.'],
    options: ENCODING_OPTIONS,
    positionals: { min: 1, name: 'PATH' },
    examples: ['nixcache hash path ./result', 'nixcache hash path --base32 /nix/store/…-hello-2.12'],
  },
  async run(args, ctx) {
    const format = encodingOf(args, 'hash path');
    const algorithm = algorithmOf(args, 'hash path');
    for (const p of args.positionals) {
      const { hash } = await hashPath(p, { algorithm, signal: ctx.signal });
      await writeLine(ctx.stdout, format(hash));
    }
    return EXIT.ok;
  },
};

const file: Command = {
  spec: {
    name: 'hash file',
    summary: "print the hash of each FILE's contents",
    usage: ['[--type ALGO] [--sri|--base16|--base32|--base64] FILE...'],
    details: ['The same as `nix hash file`; `-` reads stdin.'],
    options: ENCODING_OPTIONS,
    positionals: { min: 1, name: 'FILE' },
    examples: [
      'nixcache hash file --base32 source.tar.gz',
      'nixcache hash file --type sha512 --base16 nar/x.nar.xz',
    ],
  },
  async run(args, ctx) {
    const format = encodingOf(args, 'hash file');
    const algorithm = algorithmOf(args, 'hash file');
    for (const p of args.positionals) {
      const hasher = createHasher(algorithm);
      for await (const chunk of openInput(p, ctx)) {
        ctx.signal.throwIfAborted();
        hasher.update(chunk);
      }
      await writeLine(ctx.stdout, format({ algorithm, digest: hasher.digest() }));
    }
    return EXIT.ok;
  },
};

export const commands: Readonly<Record<string, Command>> = {
  'hash path': path,
  'hash file': file,
};
