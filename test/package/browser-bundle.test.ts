import { builtinModules } from 'node:module';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/env.js';

const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** Bundles an entry for the browser and lists every Node built-in it tried to import. */
async function bundleForBrowser(entry: string): Promise<{ nodeImports: string[]; bytes: number }> {
  const nodeImports: string[] = [];
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: repoRoot,
    bundle: true,
    write: false,
    minify: true,
    format: 'esm',
    platform: 'browser',
    logLevel: 'silent',
    plugins: [
      {
        name: 'forbid-node-builtins',
        setup(b) {
          b.onResolve({ filter: /.*/ }, (args) => {
            if (builtins.has(args.path)) {
              nodeImports.push(`${args.path} (from ${args.importer})`);
              return { path: args.path, external: true };
            }
            return undefined;
          });
        },
      },
    ],
  });
  return { nodeImports, bytes: result.outputFiles[0]!.contents.length };
}

describe('the root entry', () => {
  it('bundles for the browser without any Node built-in', async () => {
    const { nodeImports, bytes } = await bundleForBrowser('src/index.ts');
    expect(nodeImports).toEqual([]);
    // Measured when written: ~40 kB minified (noble ed25519 + hashes included). Keep it small.
    expect(bytes).toBeLessThan(80_000);
  });

  it('would be caught importing a Node built-in', async () => {
    const { nodeImports } = await bundleForBrowser('test/helpers/env.ts');
    expect(nodeImports.length).toBeGreaterThan(0);
  });
});
