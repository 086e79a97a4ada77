/**
 * `init --writer-policy-out FILE [--writer NAME] [--writer-gc]`: writes the IAM policy a pushing
 * user needs on the cache's bucket (src/store/s3-policy.ts) and returns the `mc admin` and
 * `aws iam` commands that attach it, for the init command to print. Needs no credentials.
 */
import { writeFile } from 'node:fs/promises';
import { NixcacheError } from '../errors.js';
import { type IamPolicy, writerPolicy, writerPolicyCommands } from '../store/s3-policy.js';
import { parseStoreUrl } from '../store/url.js';
import { UsageError } from './context.js';

export interface WriterPolicyRequest {
  readonly storeUrl: string;
  readonly file: string;
  /** The IAM/MinIO user the policy is for (default `nixcache-writer`). */
  readonly writer?: string;
  readonly gc?: boolean;
}

export interface WriterPolicyOutput {
  readonly file: string;
  readonly writer: string;
  readonly policyName: string;
  readonly policy: IamPolicy;
  readonly mc: readonly string[];
  readonly aws: readonly string[];
}

/**
 * Writes the writer policy of the s3:// store `storeUrl` to `file` (JSON, overwriting it).
 *
 * @throws {UsageError} when the store is not s3:// or the writer name is not a plain user name.
 * @throws {NixcacheError} IO when the file cannot be written.
 * @example await emitWriterPolicy({ storeUrl: 's3://nix-cache/ci', file: 'writer.json' })
 */
export async function emitWriterPolicy(request: WriterPolicyRequest): Promise<WriterPolicyOutput> {
  const config = parseStoreUrl(request.storeUrl);
  if (config.scheme !== 's3' || !config.bucket) {
    throw new UsageError(
      '--writer-policy-out needs an s3:// store (an IAM policy is about a bucket)',
      'init',
    );
  }
  const writer = request.writer ?? 'nixcache-writer';
  if (!/^[A-Za-z0-9_+=,.@-]{1,128}$/.test(writer)) {
    throw new UsageError(
      `--writer: ${JSON.stringify(writer)} is not a user name (letters, digits, _+=,.@-)`,
      'init',
    );
  }
  const policy = writerPolicy(config.bucket, config.prefix, { gc: request.gc ?? false });
  try {
    await writeFile(request.file, `${JSON.stringify(policy, null, 2)}\n`, { mode: 0o644 });
  } catch (e) {
    throw new NixcacheError(
      'IO',
      `cannot write --writer-policy-out '${request.file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      { file: request.file },
      { cause: e },
    );
  }
  const commands = writerPolicyCommands(request.file, config.bucket, writer);
  return { file: request.file, writer, policy, ...commands };
}

/** The lines `init` prints about the writer policy it wrote. */
export function writerPolicyLines(out: WriterPolicyOutput): string[] {
  const resources = [...new Set(out.policy.Statement.flatMap((s) => s.Resource))].join(', ');
  return [
    `wrote the IAM policy of the cache's writer to ${out.file} (on ${resources})`,
    "attach it to the user with MinIO's mc (ALIAS is the server's mc alias):",
    ...out.mc.map((c) => `  ${c}`),
    'or with AWS IAM:',
    ...out.aws.map((c) => `  ${c}`),
  ];
}

/** The `writerPolicy` member of `init --json`. */
export function writerPolicyJson(out: WriterPolicyOutput): Record<string, unknown> {
  return {
    file: out.file,
    writer: out.writer,
    policyName: out.policyName,
    commands: { mc: out.mc, aws: out.aws },
  };
}
