import { defineConfig } from 'tsup';

/**
 * One entry per subpath export (package.json "exports"), plus the CLI and the verify worker script
 * (started by path, never imported); keep the lists in step.
 */
export const entries = {
  index: 'src/index.ts',
  errors: 'src/errors.ts',
  'nar/index': 'src/nar/index.ts',
  'nar/node/index': 'src/nar/node/index.ts',
  'compression/index': 'src/compression/index.ts',
  'store/index': 'src/store/index.ts',
  'store/s3': 'src/store/s3.ts',
  'store/http': 'src/store/http.ts',
  'store/file': 'src/store/file.ts',
  'cache/index': 'src/cache/index.ts',
  'cli/main': 'src/cli/main.ts',
  'cache/verify-worker': 'src/cache/verify-worker.ts',
};

export default defineConfig({
  entry: entries,
  format: ['esm'],
  target: 'node20',
  platform: 'neutral',
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  treeshake: true,
  // Dependencies stay external: codecs and the AWS SDK load lazily from node_modules.
  skipNodeModulesBundle: true,
  external: [/^node:/],
});
