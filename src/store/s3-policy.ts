/**
 * The IAM policy of a cache's writer (the user `nixcache push`, `sign` and `copy --to` run as) and
 * the commands that attach it. Least privilege for what the writer does on S3: read and write
 * objects (narinfos, NARs, listings, nix-cache-info), multipart uploads and their clean-up, and
 * listing (`sign --all`, `verify --all`, resume). Bucket-level actions go on `arn:aws:s3:::BUCKET`
 * (ListBucket narrowed with an `s3:prefix` condition when the cache lives under a prefix), object
 * actions on `arn:aws:s3:::BUCKET/PREFIX/*`. Deleting is only granted for garbage collection.
 */
import { NixcacheError } from '../errors.js';

/** Actions on the bucket itself. */
export const WRITER_BUCKET_ACTIONS = [
  's3:GetBucketLocation',
  's3:ListBucket',
  's3:ListBucketMultipartUploads',
] as const;

/** Actions on the cache's objects. */
export const WRITER_OBJECT_ACTIONS = [
  's3:AbortMultipartUpload',
  's3:GetObject',
  's3:ListMultipartUploadParts',
  's3:PutObject',
] as const;

/** The extra object action a writer that collects garbage needs. */
export const WRITER_GC_ACTION = 's3:DeleteObject';

export interface WriterPolicyOptions {
  /** Also allow `s3:DeleteObject` on the cache's objects (garbage collection). */
  readonly gc?: boolean;
}

/** An IAM policy document (`Version` 2012-10-17). */
export interface IamPolicy {
  readonly Version: '2012-10-17';
  readonly Statement: readonly IamStatement[];
}

export interface IamStatement {
  readonly Sid: string;
  readonly Effect: 'Allow';
  readonly Action: readonly string[];
  readonly Resource: readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;
}

/**
 * The policy a pushing user needs on `bucket` (under `prefix`, '' for the whole bucket).
 *
 * @throws {NixcacheError} BAD_ARGUMENT for an empty bucket name or a prefix with wildcards.
 * @example writerPolicy('nix-cache', 'ci') // ListBucket only under ci/, objects ci/*
 */
export function writerPolicy(bucket: string, prefix: string, options: WriterPolicyOptions = {}): IamPolicy {
  if (!bucket) throw new NixcacheError('BAD_ARGUMENT', 'writer policy: no bucket name', {});
  const clean = prefix.replace(/^\/+|\/+$/g, '');
  if (/[*?]/.test(clean)) {
    throw new NixcacheError('BAD_ARGUMENT', `writer policy: prefix ${JSON.stringify(clean)} has a wildcard`, {
      field: 'prefix',
      actual: clean,
    });
  }
  const bucketArn = `arn:aws:s3:::${bucket}`;
  const objects = `${bucketArn}/${clean ? `${clean}/` : ''}*`;
  const statements: IamStatement[] = [];
  if (clean) {
    // Listing is narrowed to the cache's prefix; the other bucket actions have no prefix.
    statements.push({
      Sid: 'NixcacheWriterBucket',
      Effect: 'Allow',
      Action: ['s3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
      Resource: [bucketArn],
    });
    statements.push({
      Sid: 'NixcacheWriterList',
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: [bucketArn],
      Condition: { StringLike: { 's3:prefix': [clean, `${clean}/*`] } },
    });
  } else {
    statements.push({
      Sid: 'NixcacheWriterBucket',
      Effect: 'Allow',
      Action: [...WRITER_BUCKET_ACTIONS],
      Resource: [bucketArn],
    });
  }
  statements.push({
    Sid: 'NixcacheWriterObjects',
    Effect: 'Allow',
    Action: [...WRITER_OBJECT_ACTIONS, ...(options.gc ? [WRITER_GC_ACTION] : [])].sort(),
    Resource: [objects],
  });
  return { Version: '2012-10-17', Statement: statements };
}

/** Quotes a word for a POSIX shell when it needs it. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The commands that create the policy from `file` and attach it to the user `writer`: MinIO's
 * `mc admin` (with `ALIAS` standing for the `mc alias` of the server) and AWS's `aws iam`.
 *
 * @example writerPolicyCommands('writer.json', 'nix-cache', 'ci-pusher')
 */
export function writerPolicyCommands(
  file: string,
  bucket: string,
  writer: string,
): { readonly policyName: string; readonly mc: readonly string[]; readonly aws: readonly string[] } {
  const policyName = `nixcache-writer-${bucket}`;
  const [f, p, w] = [shellQuote(file), shellQuote(policyName), shellQuote(writer)];
  return {
    policyName,
    mc: [`mc admin policy create ALIAS ${p} ${f}`, `mc admin policy attach ALIAS ${p} --user ${w}`],
    aws: [`aws iam put-user-policy --user-name ${w} --policy-name ${p} --policy-document file://${f}`],
  };
}
