// Package httpendpoint is the http_endpoint destination: it delivers
// batches to any HTTP endpoint that implements Firehose's "HTTP endpoint
// delivery request and response specifications" (Datadog, New Relic,
// Dynatrace, Sumo Logic, a service of your own...), as Firehose's
// HttpEndpointDestinationConfiguration does.
//
// # Request
//
// Each Deliver is one POST to the configured URL, unchanged, with
//
//	Content-Type: application/json
//	Content-Encoding: gzip                      (content_encoding GZIP only)
//	X-Amz-Firehose-Protocol-Version: 1.0
//	X-Amz-Firehose-Request-Id: <RequestID>
//	X-Amz-Firehose-Source-Arn: arn:aws:firehose:<region>:<account>:deliverystream/<stream>
//	X-Amz-Firehose-Access-Key: <access_key>     (when configured)
//	X-Amz-Firehose-Common-Attributes: {"commonAttributes":{...}}  (when configured)
//
// and the body {"requestId":"<same>","timestamp":<epoch ms of the
// attempt>,"records":[{"data":"<base64>"},...]}. The request id is a
// name-based UUID of the stream and the batch identity, so it is the same
// on every retry of a batch and after a crash and redelivery (endpoints
// deduplicate on it), and differs between the parts and rounds of a batch.
// The body is written without reflection: base64 goes straight into a
// pooled buffer, and with GZIP the uncompressed body is never held whole.
// Limits keeps a request within the specification: MaxRecords records and
// MaxBytes record bytes, so that the body stays within 64 MiB before
// compression whatever the record sizes (the runner splits larger
// batches).
//
// # Response
//
// Only a 200 whose body is JSON carrying the request's requestId is a
// success; redirects are not followed. Everything else is a
// *pipeline.CodedError with output type OutputType (http-endpoint-failed)
// and Firehose's code, wrapped in a *pipeline.RetryableError so that the
// runner retries it with backoff within the stream's retry duration, then
// writes the records to the stream's error output with the last message:
//
//   - any status but 200 (other 2xx, 3xx, 4xx, 5xx): DestinationException,
//     with the status and the endpoint's body (at most MaxErrorMessage
//     bytes); Retry-After is honoured on 429 and 503;
//   - a 200 body that is not JSON, or without the request's requestId:
//     InvalidResponseFromDestination;
//   - a body over 1 MiB: ResponseTooLarge;
//   - no answer within request_timeout (3 minutes by default):
//     RequestTimeout;
//   - a connection refused, unresolvable or failing TLS: ConnectionFailed;
//     broken before the answer: ConnectionReset.
//
// 413 (Payload Too Large) is permanent: not retried, DestinationException.
// Firehose discards such a batch without backing it up; Sluice, which never
// drops records it acknowledged, lets the runner write it to the error
// output like any other failed batch. The Content-Type of a response is not
// checked, only its body. A cancelled context is returned as an error
// wrapping the context's, unmarked.
//
// # Secrets
//
// The access key (access_key, usually ${ENV}, or access_key_file) is only
// ever written into the request header: Options and Config print, log and
// marshal it as "[redacted]", and no error, log line or Describe output
// holds it.
//
// Requests use HTTP/1.1 (one connection per request in flight, up to 64
// kept idle) and the proxy of HTTPS_PROXY/HTTP_PROXY/NO_PROXY. Ready opens
// a TCP connection to the URL's host and port (the proxy's, when one
// applies); Describe
// returns Firehose's HttpEndpointDestinationDescription. The package
// depends on pipeline and klauspost/compress only.
package httpendpoint
