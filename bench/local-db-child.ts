/**
 * The child process of the local-database benchmark (bench/local-db.ts), bundled with esbuild and
 * run by plain node as the CLI runs: reads the metadata of the closures of the given paths from a
 * Nix database, as `nixcache push` does before it uploads, and prints how many records it read.
 *
 * Usage: node local-db-child.mjs DB_FILE ROOTS_FILE
 */
import * as fs from 'node:fs';
import { localNixMetadata } from '../src/cache/local-metadata.js';

const [db, rootsFile] = process.argv.slice(2) as [string, string];
const roots = fs.readFileSync(rootsFile, 'utf8').split('\n').filter(Boolean);
console.log(localNixMetadata(roots, { db }).size);
