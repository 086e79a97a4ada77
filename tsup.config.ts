import { defineConfig } from 'tsup';

/** One entry per subpath export (package.json "exports"); keep the two lists in step. */
export const entries = {
  index: 'src/index.ts',
  errors: 'src/errors.ts',
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
  external: [/^node:/, /^@aws-sdk\//],
});
