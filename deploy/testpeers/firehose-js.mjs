// Runs Firehose calls with the AWS SDK for JavaScript v3 (its own SigV4
// signer) against an endpoint, and prints one JSON line per call:
// {"op": ..., "ok": true, "out": ...} or {"op": ..., "ok": false, "code": ..., "message": ...}.
//
//   node firehose-js.mjs ENDPOINT ACCESS_KEY_ID SECRET STREAM
//
// The calls: PutRecord, PutRecordBatch (2 records), ListDeliveryStreams,
// DescribeDeliveryStream, all on STREAM.
import {
  FirehoseClient, PutRecordCommand, PutRecordBatchCommand,
  ListDeliveryStreamsCommand, DescribeDeliveryStreamCommand,
} from '@aws-sdk/client-firehose';

const [endpoint, accessKeyId, secretAccessKey, stream] = process.argv.slice(2);
const client = new FirehoseClient({
  endpoint, region: 'eu-west-3', maxAttempts: 1,
  credentials: { accessKeyId, secretAccessKey },
});
const enc = new TextEncoder();
const calls = [
  ['PutRecord', new PutRecordCommand({ DeliveryStreamName: stream, Record: { Data: enc.encode('from-the-js-sdk-1') } })],
  ['PutRecordBatch', new PutRecordBatchCommand({ DeliveryStreamName: stream,
    Records: [{ Data: enc.encode('from-the-js-sdk-2') }, { Data: enc.encode('from-the-js-sdk-3') }] })],
  ['ListDeliveryStreams', new ListDeliveryStreamsCommand({})],
  ['DescribeDeliveryStream', new DescribeDeliveryStreamCommand({ DeliveryStreamName: stream })],
];
for (const [op, cmd] of calls) {
  try {
    const out = await client.send(cmd);
    delete out.$metadata;
    console.log(JSON.stringify({ op, ok: true, out }));
  } catch (e) {
    console.log(JSON.stringify({ op, ok: false, code: e.name, message: e.message }));
  }
}
