/**
 * `nixcache nar dump|ls|cat|restore`: the NAR tools of `nix-store --dump`, `nix nar ls`,
 * `nix nar cat` and `nix-store --restore`. NAR files compressed as binary caches store them
 * (`.nar.xz`, `.nar.zst`, `.nar.bz2`, `.nar.br`, `.nar.gz`) are decompressed on the fly.
 */
import { decompress } from '../../compression/compress.js';
import { NixcacheError } from '../../errors.js';
import { formatNarListing, type NarListingNode, narListing } from '../../nar/listing.js';
import { dumpPath } from '../../nar/node/dump.js';
import { restorePath } from '../../nar/node/restore.js';
import { readNar } from '../../nar/read.js';
import type { CommandSpec, ParsedArgs } from '../args.js';
import { openInput } from '../common.js';
import { type CliContext, EXIT, UsageError, write, writeAndRelease, writeLine } from '../context.js';
import type { Command } from '../run.js';

const SUFFIXES: readonly [string, string][] = [
  ['.xz', 'xz'],
  ['.zst', 'zstd'],
  ['.bz2', 'bzip2'],
  ['.br', 'br'],
  ['.gz', 'gzip'],
];

const COMPRESSION_OPTION = {
  compression: {
    type: 'string',
    value: 'METHOD',
    help: 'the NAR is compressed: none, xz, zstd, bzip2, br, gzip (default: from the file name)',
  },
} as const satisfies CommandSpec['options'];

/** The NAR named on the command line, decompressed. */
function narInput(file: string, args: ParsedArgs, ctx: CliContext): AsyncIterable<Uint8Array> {
  const method = args.string('compression') ?? SUFFIXES.find(([s]) => file.endsWith(s))?.[1] ?? 'none';
  const raw = openInput(file, ctx);
  return method === 'none' ? raw : decompress(method, raw, { signal: ctx.signal });
}

/** `/bin/hello` → `bin/hello`; `/` and `` → ``. */
function innerPath(p: string): string {
  return p.replace(/^\/+|\/+$/g, '').replace(/\/+/g, '/');
}

function bytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function find(root: NarListingNode, path: string): NarListingNode | undefined {
  let node: NarListingNode | undefined = root;
  for (const part of path ? path.split('/') : []) {
    if (node?.type !== 'directory' || !node.entries || !Object.hasOwn(node.entries, part)) return undefined;
    node = node.entries[part];
  }
  return node;
}

function shallow(node: NarListingNode): NarListingNode {
  if (node.type !== 'directory' || !node.entries) return node;
  const entries = Object.create(null) as Record<string, NarListingNode>;
  for (const name of Object.keys(node.entries)) entries[name] = {};
  return { type: 'directory', entries };
}

function modeString(node: NarListingNode): string {
  switch (node.type) {
    case 'directory':
      return 'dr-xr-xr-x';
    case 'symlink':
      return 'lrwxrwxrwx';
    case 'regular':
      return node.executable ? '-r-xr-xr-x' : '-r--r--r--';
    default:
      return '----------';
  }
}

const dump: Command = {
  spec: {
    name: 'nar dump',
    summary: 'write the NAR serialisation of PATH to stdout',
    usage: ['PATH > FILE.nar'],
    details: ['Byte for byte what `nix-store --dump` (`nix nar dump-path`) writes.'],
    options: {},
    positionals: { min: 1, max: 1, name: 'PATH' },
    examples: ['nixcache nar dump ./result > hello.nar', 'nixcache nar dump ./dir | xz > dir.nar.xz'],
  },
  async run(args, ctx) {
    if (ctx.stdout.isTTY)
      throw new UsageError('refusing to write a NAR to a terminal; redirect stdout', 'nar dump');
    // Each chunk is in stdout before the next is asked for, so the dump may fill the same
    // buffers again (as `nix-store --dump` does): no fresh memory per MiB of NAR.
    const chunks = dumpPath(args.positionals[0]!, { signal: ctx.signal, reuseChunks: true });
    for await (const chunk of chunks) await writeAndRelease(ctx.stdout, chunk);
    return EXIT.ok;
  },
};

const ls: Command = {
  spec: {
    name: 'nar ls',
    summary: 'list the contents of a NAR (like `nix nar ls`)',
    usage: ['[-l] [-R] [-d] [--json] NAR [PATH]'],
    details: ['NAR is a file (`-` for stdin); PATH is a path inside the archive (default `/`).'],
    options: {
      long: { type: 'boolean', short: 'l', help: 'show type, permissions and size' },
      recursive: { type: 'boolean', short: 'R', help: 'list subdirectories too' },
      directory: { type: 'boolean', short: 'd', help: 'show the directory itself, not its contents' },
      json: { type: 'boolean', help: 'print the listing as JSON (the `.ls` node format)' },
      ...COMPRESSION_OPTION,
    },
    positionals: { min: 1, max: 2, name: 'NAR [PATH]' },
    examples: ['nixcache nar ls -lR hello.nar', 'nixcache nar ls --json -R nar/1abc….nar.xz /bin'],
  },
  async run(args, ctx) {
    const [file, at = '/'] = args.positionals as [string, string?];
    const listing = await narListing(narInput(file, args, ctx));
    const path = innerPath(at);
    const node = find(listing.root, path);
    if (!node) throw new NixcacheError('NOT_FOUND', `path '${at}' does not exist in the NAR`, { path: at });
    const recursive = args.flag('recursive');
    if (args.flag('json')) {
      const shown = recursive || args.flag('directory') ? node : shallow(node);
      const doc = formatNarListing({ version: 1, root: shown });
      await writeLine(ctx.stdout, doc.slice('{"version":1,"root":'.length, -1));
      return EXIT.ok;
    }
    const long = args.flag('long');
    const lines: string[] = [];
    const show = (n: NarListingNode, name: string) => {
      if (!long) return lines.push(name);
      const size = n.type === 'regular' ? n.size : 0;
      const target = n.type === 'symlink' ? ` -> ${n.target}` : '';
      return lines.push(`${modeString(n)} ${String(size).padStart(20)} ${name}${target}`);
    };
    const walk = (n: NarListingNode, prefix: string, top: boolean) => {
      if (n.type === 'directory' && (top || recursive)) {
        for (const name of Object.keys(n.entries ?? {}).sort(bytewise)) {
          const child = n.entries![name]!;
          show(child, `${prefix}/${name}`);
          walk(child, `${prefix}/${name}`, false);
        }
      }
    };
    if (node.type === 'directory' && !args.flag('directory')) walk(node, '.', true);
    else show(node, path === '' ? '.' : path.slice(path.lastIndexOf('/') + 1));
    if (lines.length) await writeLine(ctx.stdout, lines.join('\n'));
    return EXIT.ok;
  },
};

const cat: Command = {
  spec: {
    name: 'nar cat',
    summary: 'print the contents of a file inside a NAR (like `nix nar cat`)',
    usage: ['NAR PATH'],
    options: { ...COMPRESSION_OPTION },
    positionals: { min: 2, max: 2, name: 'NAR PATH' },
    examples: [
      'nixcache nar cat hello.nar /bin/hello > hello',
      'nixcache nar cat nar/1abc….nar.xz /share/doc/README',
    ],
  },
  async run(args, ctx) {
    const [file, at] = args.positionals as [string, string];
    const path = innerPath(at);
    for await (const entry of readNar(narInput(file, args, ctx))) {
      if (entry.path !== path) continue;
      if (entry.type !== 'regular')
        throw new NixcacheError('BAD_ARGUMENT', `path '${at}' is not a regular file in the NAR`, {
          path: at,
        });
      for await (const chunk of entry.contents ?? []) await write(ctx.stdout, chunk);
      return EXIT.ok;
    }
    throw new NixcacheError('NOT_FOUND', `path '${at}' does not exist in the NAR`, { path: at });
  },
};

const restore: Command = {
  spec: {
    name: 'nar restore',
    summary: 'unpack a NAR into a new directory (like `nix-store --restore`)',
    usage: ['TARGET [--input NAR]  (reads the NAR from stdin without --input)'],
    details: [
      'TARGET must not exist. The archive is checked while it is unpacked (names, order, depth); on any error everything created so far is removed.',
    ],
    options: {
      input: {
        type: 'string',
        short: 'i',
        value: 'NAR',
        help: 'read the NAR from this file instead of stdin',
      },
      ...COMPRESSION_OPTION,
    },
    positionals: { min: 1, max: 1, name: 'TARGET' },
    examples: [
      'nixcache nar restore ./out < hello.nar',
      'nixcache nar restore ./out --input nar/1abc….nar.xz',
    ],
  },
  async run(args, ctx) {
    const input = args.string('input') ?? '-';
    if (input === '-' && ctx.stdin.isTTY) {
      throw new UsageError('give --input NAR or pipe the NAR into stdin', 'nar restore');
    }
    try {
      await restorePath(narInput(input, args, ctx), args.positionals[0]!);
    } catch (e) {
      // `out/.`, `out/..`, `out/`: a mistake in TARGET, so a usage error.
      if (e instanceof NixcacheError && e.code === 'BAD_ARGUMENT' && e.data.field === 'target')
        throw new UsageError(e.message, 'nar restore');
      throw e;
    }
    return EXIT.ok;
  },
};

export const commands: Readonly<Record<string, Command>> = {
  'nar dump': dump,
  'nar ls': ls,
  'nar cat': cat,
  'nar restore': restore,
};
