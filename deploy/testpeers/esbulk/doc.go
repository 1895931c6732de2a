// Package esbulk is an in-memory server that speaks Elasticsearch 8's
// `_bulk` API, written from the Elasticsearch bulk API documentation
// independently of Sluice's Elasticsearch destination, for its tests. It
// can inject the faults a real cluster shows (per-item 429/400/409,
// whole-request 429/5xx with Retry-After, error storms, connections cut
// mid-answer, slow and non-bulk answers) and lets tests read back what was
// stored and how many times each document was written.
//
// What it serves:
//
//   - POST or PUT /_bulk and /{index}/_bulk: NDJSON action/metadata lines
//     ({"index"|"create"|"update"|"delete": {"_index","_id","routing",
//     "pipeline","if_seq_no","if_primary_term",...}}), each followed by a
//     source line except delete; Content-Type application/x-ndjson,
//     application/json or their application/vnd.elasticsearch+ variants
//     (406 otherwise); Content-Encoding gzip; the body must end with a
//     newline (400 illegal_argument_exception otherwise). The answer is ES
//     8's: 200 {"took","errors","items":[{op: {"_index","_id","_version",
//     "result","_shards","_seq_no","_primary_term","status"}}]}, failed
//     items with "status" and "error" {"type","reason","index",...}.
//   - GET / (the info answer, Elasticsearch 8.15.0 or OpenSearch 2.15.0)
//     and HEAD / (200).
//   - GET /_esbulk/state (documents per index, requests seen) and POST
//     /_esbulk/faults (set faults from JSON, see Control), for scripts.
//
// Every answer carries X-Elastic-Product: Elasticsearch, which the
// go-elasticsearch v8 client requires on its first 2xx answer, unless
// Config.OpenSearch is set (OpenSearch sends no such header).
//
// The package imports the standard library only.
package esbulk
