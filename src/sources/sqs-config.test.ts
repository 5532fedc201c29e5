import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/load.js';
import { sqsOptionsFromConfig } from './sqs.js';

test('ingest.sqs config keys reach the SQS source; the queue URL falls back to the config', async () => {
  const config = await loadConfig({
    env: {
      TALON_INGEST__SQS__QUEUE_URL: 'https://sqs.us-west-1.amazonaws.com/123456789012/fdr',
      TALON_INGEST__SQS__MAX_MESSAGES: '4',
      TALON_INGEST__SQS__S3_ENDPOINT: 'http://127.0.0.1:9000',
      TALON_INGEST__SQS__FORCE_PATH_STYLE: 'true',
      TALON_INGEST__SQS__MALFORMED: 'leave',
    },
    cwd: '/nonexistent',
  });
  const opts = sqsOptionsFromConfig(config.ingest.sqs, { queueUrl: undefined });
  assert.equal(opts.queueUrl, 'https://sqs.us-west-1.amazonaws.com/123456789012/fdr');
  assert.equal(opts.maxMessages, 4);
  assert.equal(opts.malformed, 'leave');
  assert.deepEqual(opts.s3, { endpoint: 'http://127.0.0.1:9000', forcePathStyle: true });
  assert.equal(sqsOptionsFromConfig(config.ingest.sqs, { queueUrl: 'https://q/2' }).queueUrl, 'https://q/2');
  await assert.rejects(
    loadConfig({ env: { TALON_INGEST__SQS__MAX_MESSAGES: '11' }, cwd: '/nonexistent' }),
    /ingest\.sqs\.max_messages/,
  );
});
