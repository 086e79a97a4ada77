/**
 * The package as users get it: `npm pack` makes a tarball that installs (from the npm cache
 * where it can) into an empty project, where the root entry and every subpath import in ESM,
 * `require('nixcache')` works (Node >= 20.19 loads ES modules from require), TypeScript resolves
 * the types, and `npx nixcache --help` runs. publint and @arethetypeswrong/cli check the tarball.
 * The root entry's minified bundle size is measured and printed.
 *
 * attw runs with the `esm-only` profile: nixcache is an ES-module-only package (`"type":
 * "module"`, `exports` with `types`/`default` only), so the `node10` resolution (no `exports`
 * support at all) and TypeScript's `node16` view of CommonJS callers (which predates Node's
 * require(esm)) are not targets; every ESM and bundler resolution must be clean.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inCI, repoRoot } from '../helpers/env.js';

const built =
  existsSync(join(repoRoot, 'dist', 'index.js')) && existsSync(join(repoRoot, 'dist', 'cli', 'main.js'));
if (!built && inCI) throw new Error('dist/ is missing under CI=true (npm test builds it before the tests)');
if (!built) console.warn('[nixcache tests] skipping the package test: run `npm run build` first');

const bin = (name: string) => join(repoRoot, 'node_modules', '.bin', name);

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], cwd: string, timeout = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd, timeout, maxBuffer: 64 << 20, env: { ...process.env, NODE_OPTIONS: '' } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

let work: string;
let tarball: string;
let project: string;
let subpaths: string[];

beforeAll(async () => {
  if (!built) return;
  work = await mkdtemp(join(tmpdir(), 'nixcache-package-'));
  const pack = await run('npm', ['pack', '--json', '--pack-destination', work], repoRoot);
  expect(pack.code, pack.stderr).toBe(0);
  const [{ filename }] = JSON.parse(pack.stdout) as [{ filename: string }];
  tarball = join(work, filename);
  project = join(work, 'consumer');
  await mkdir(project);
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }),
  );
  // From the npm cache where it holds the package (`npm ci` filled it), else from the registry:
  // a fresh cache has the tarballs but not the metadata an offline-only install needs (ENOTCACHED). Install
  // scripts are skipped: they only compile the optional native codecs (node-gyp, ~35 s), which
  // have pure-JS and WASM fallbacks and are not what this test is about.
  const install = await run(
    'npm',
    ['install', tarball, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'],
    project,
  );
  expect(install.code, install.stderr).toBe(0);
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
    exports: Record<string, unknown>;
  };
  subpaths = Object.keys(pkg.exports)
    .filter((k) => k !== './package.json')
    .map((k) => (k === '.' ? 'nixcache' : `nixcache/${k.slice(2)}`));
}, 180_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!built)('the packed package', () => {
  it('imports the root entry and every subpath in ESM', async () => {
    expect(subpaths).toHaveLength(10);
    const script = `
      import { parseNarInfo, verifyNarInfo, generateSecretKey, formatPublicKey, signNarInfo } from 'nixcache';
      const key = generateSecretKey('consumer-1');
      const info = signNarInfo(parseNarInfo([
        'StorePath: /nix/store/syd87l2rxw8cbsxmxl853h0r6pdwhwjr-curl-7.82.0-bin',
        'URL: nar/1.nar.xz', 'Compression: xz',
        'NarHash: sha256:1b4sb93wp679q4zx9k1ignby1yna3z7c4c2ri3wphylbc2dwsys0', 'NarSize: 196040',
        'References: ', ''].join('\\n')), key);
      const result = verifyNarInfo(info, [formatPublicKey(key.publicKey)]);
      if (!result.trusted || result.signedBy[0] !== 'consumer-1') throw new Error('verification failed');
      const counts = {};
      for (const s of ${JSON.stringify(subpaths)}) counts[s] = Object.keys(await import(s)).length;
      console.log(JSON.stringify(counts));
    `;
    await writeFile(join(project, 'esm.mjs'), script);
    const r = await run(process.execPath, ['esm.mjs'], project);
    expect(r.code, r.stderr).toBe(0);
    const counts = JSON.parse(r.stdout) as Record<string, number>;
    expect(Object.keys(counts)).toEqual(subpaths);
    for (const [s, n] of Object.entries(counts)) expect(n, s).toBeGreaterThan(0);
  });

  it('works from require() (Node >= 20.19)', async () => {
    await writeFile(
      join(project, 'cjs.cjs'),
      `const { parseNarInfo, verifyNarInfo } = require('nixcache');
       if (typeof parseNarInfo !== 'function' || typeof verifyNarInfo !== 'function') process.exit(3);
       for (const s of ${JSON.stringify(subpaths)}) if (Object.keys(require(s)).length === 0) process.exit(4);
       console.log('ok');`,
    );
    const r = await run(process.execPath, ['cjs.cjs'], project);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('ok\n');
  });

  it('resolves the types in a strict TypeScript project (nodenext)', async () => {
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ['check.ts'],
      }),
    );
    await writeFile(
      join(project, 'check.ts'),
      `import { parseNarInfo, verifyNarInfo, type NarInfo } from 'nixcache';
       import { NixcacheError } from 'nixcache/errors';
       import { readNar } from 'nixcache/nar';
       import { compress } from 'nixcache/compression';
       import { openStore } from 'nixcache/store';
       import { verifyCache } from 'nixcache/cache';
       const info: NarInfo = parseNarInfo('');
       const trusted: boolean = verifyNarInfo(info, []).trusted;
       const code: string = new NixcacheError('IO', 'x').code;
       export { trusted, code, readNar, compress, openStore, verifyCache };`,
    );
    const r = await run(
      process.execPath,
      [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'],
      project,
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('runs the README examples marked runnable', async () => {
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/<!-- runnable:[^>]*-->\n```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const [i, code] of blocks.entries()) {
      await writeFile(join(project, `readme-${i}.mjs`), code);
      const r = await run(process.execPath, [`readme-${i}.mjs`], project);
      expect(r.code, `README example ${i + 1}:\n${r.stderr}`).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(0);
      expect(r.stdout).not.toMatch(/undefined/);
    }
  });

  it('runs `npx nixcache --help`', async () => {
    const r = await run('npx', ['--prefer-offline', 'nixcache', '--help'], project);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: nixcache <command>');
    const v = await run('npx', ['--prefer-offline', 'nixcache', '--version'], project);
    expect(v.stdout).toMatch(/^nixcache \d+\.\d+\.\d+\n$/);
  });

  it('passes publint and @arethetypeswrong/cli (esm-only profile)', async () => {
    const publint = await run(bin('publint'), ['run', tarball, '--strict'], work);
    expect(publint.code, publint.stdout + publint.stderr).toBe(0);
    expect(publint.stdout).toMatch(/All good/);
    const attw = await run(bin('attw'), [tarball, '--profile', 'esm-only', '--format', 'json'], work);
    expect(attw.code, attw.stdout + attw.stderr).toBe(0);
    const report = JSON.parse(attw.stdout) as {
      analysis: { problems: { kind: string; resolutionKind?: string }[] };
    };
    const relevant = report.analysis.problems.filter(
      (p) => p.resolutionKind !== 'node10' && p.resolutionKind !== 'node16-cjs',
    );
    expect(relevant).toEqual([]);
  });

  it('keeps the root entry small and free of node:* and the AWS SDK', async () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const imported: string[] = [];
    const result = await build({
      stdin: { contents: "export * from 'nixcache';", resolveDir: project },
      bundle: true,
      write: false,
      minify: true,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      logLevel: 'silent',
      plugins: [
        {
          name: 'record',
          setup(b) {
            b.onResolve({ filter: /.*/ }, (args) => {
              imported.push(args.path);
              return builtins.has(args.path) ? { path: args.path, external: true } : undefined;
            });
          },
        },
      ],
    });
    const bytes = result.outputFiles[0]!.contents;
    const gzipped = gzipSync(bytes).length;
    console.log(
      `nixcache root entry: ${(bytes.length / 1024).toFixed(1)} KiB minified, ${(gzipped / 1024).toFixed(1)} KiB gzipped`,
    );
    expect(imported.filter((p) => builtins.has(p))).toEqual([]);
    expect(imported.filter((p) => p.includes('@aws-sdk'))).toEqual([]);
    expect(bytes.length).toBeLessThan(80_000);
  });
});
