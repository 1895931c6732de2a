// Package disk is the durable buffer.Buffer: one append-only, segmented log
// per stream, made durable by group commit.
//
// # Directory
//
// A stream's directory (Options.Dir) holds:
//
//	00000000000000000000.seg   segment files, named by the logical position
//	00000000000067108880.seg   (byte offset) of their first frame, 20 digits
//	cursor                     committed position, in-flight batches, log id
//	cursor.tmp                 transient: the next cursor, before its rename
//	00000000000067108880.seg.key the segment's key file (only when encrypted)
//	positions                  source positions (only with Options.Track)
//	positions.tmp              transient: the next positions file
//	lock                       flock'd by the open Log: "pid <pid> <owner>"
//
// Open creates the directory and its missing parents (typically
// <data_dir>/buffer/<stream>) and fsyncs the parent of each directory it
// created before anything can be acknowledged: a new directory entry is
// durable only once its parent is synced. It then takes an exclusive,
// non-blocking flock on the lock file, held until Close: a second Open of
// the directory, by this process or another, fails at once with a
// *LockedError naming the holder. Lock takes the same kind of lock on any
// file (for a whole data directory). Inspect reads a directory's backlog
// without opening it (for stranded buffers).
//
// Positions are logical byte offsets: the position of a frame is the
// position of its segment plus its offset in the file, and the next frame
// follows it directly. Positions only grow. They never reset, even when
// every record has been delivered: the newest (active) segment is never
// deleted, only rolled, and the cursor file keeps the committed position.
// A new segment is started when the active one would grow past
// Options.SegmentBytes (default 64 MiB); a single Append larger than that
// gets a segment of its own.
//
// # Frame
//
// Every record is one frame, all integers little-endian:
//
//	offset size  field
//	0      4     body length L (bytes after this 8-byte prefix), 9 <= L <= 2^28
//	4      4     CRC32C (Castagnoli) of bytes [0,4) followed by the body
//	8      8     arrival time, unix nanoseconds (int64)
//	16     1     flags: bit 0 = metadata section present, bit 1 = sealed;
//	             others must be 0
//	17     M     metadata section, only when flag bit 0 is set:
//	               uvarint count, then count times:
//	               uvarint key length, key bytes, uvarint value length, value bytes
//	17+M   D     record data (D = L - 9 - M, may be 0)
//
// A sealed frame (Options.Keys) holds, after the flags, the ciphertext of
// the metadata section and data followed by the 16-byte GCM tag, sealed
// with the frame's position as nonce counter and bytes [0,4) and [8,17)
// as additional data; the CRC covers the ciphertext (see seal.go for the
// key files and why a segment is never appended to twice).
//
// The frame of a record without metadata costs 17 bytes plus its data.
// buffer/memory counts the same sizes, so positions and State.Bytes compare.
//
// # Record IDs
//
// A RecordId is "<log id>-<position>": the log id is 8 random bytes made
// when the log is first created and kept in the cursor file, the position
// is the frame's position; both in lowercase hex, 16 digits each: 33 ASCII
// characters. The same record read back gets the same ID; no two records
// of a stream ever share one, since positions are never reused once a
// record at them was acknowledged or read.
//
// # Cursor file
//
// Version 2, written by this release, all integers little-endian:
//
//	offset    size  field
//	0         4     "SLCU"
//	4         1     version (2)
//	5         3     zero
//	8         8     log id
//	16        8     committed position
//	24        4     n, the number of in-flight batches (0 <= n <= buffer.MaxInflight)
//	28        4     zero
//	32        16n   in-flight batches in log order: first and end position (uint64 each)
//	32+16n    4     CRC32C of the preceding 32+16n bytes
//
// The batches satisfy first < end and do not overlap. Version 1 (44 bytes:
// magic, version 1, 3 zero bytes, log id, committed, one in-flight first
// and end, end 0 meaning none, CRC32C of the preceding 40 bytes), written
// by earlier releases, is still read: its batch, if any, is the in-flight
// set; the next write replaces it with version 2.
//
// The file is replaced atomically: written to cursor.tmp, fsynced, renamed
// over cursor, then the directory is fsynced. MarkInflight (which appends a
// batch to the set) and Commit (which drops the batches ending at or before
// the committed position) each do one replacement and return after it. If
// a step fails they return the error, the in-memory state is unchanged and
// the cursor file is whole: the old one, or (after a failed directory
// sync) possibly the new one.
//
// # Writing: group commit
//
// Append encodes its frames (CRC included) in the caller's goroutine into
// a pooled buffer, checks the quota, takes the next positions and queues
// the buffer for the single writer goroutine. The writer takes everything
// queued, writes it with one pwritev per segment touched, fdatasyncs once
// (mode fsync, the default; mode os skips the sync) and then answers every
// waiting Append. Memory in flight is bounded by Options.MaxPendingBytes:
// an Append that would exceed it waits (bounded by its context) for the
// writer. A record is readable (below State.Head) only once acknowledged.
//
// Appends are all or nothing: the quota (Options.MaxBytes, frames of
// undelivered records, queued ones included) is checked for the whole call,
// and pipeline.ErrFull returned at once when it does not fit. A failed write
// is cut off and fails its group and everything queued behind it.
//
// A failed fsync fails its group and everything queued behind it too, and
// puts the log in a failed state: Healthy reports it, the gauge
// sluice_buffer_healthy is 0, and appends are refused at once. After a
// failed fsync the kernel may have dropped the unsynced pages and marked
// them clean, and a later fsync of the same file may succeed without having
// written them (the PostgreSQL "fsyncgate" lesson), so the log never
// writes to that file again. After Options.ReopenBackoff (doubling per
// failed attempt) the writer reopens, as Open would but in place: it cuts
// the unacknowledged tail of the failed segment, scans its acknowledged
// part again (damage found there is logged, and Read skips and counts it),
// and starts a new segment at the head, durably. Then appends are accepted
// again (counted in sluice_buffer_reopens_total). An append that arrives
// once the backoff has passed makes the writer try first.
//
// # Recovery
//
// Open deletes segments that end at or before the committed position
// (reclaims lost to a crash), then scans the active segment frame by frame
// and truncates it after the last frame whose length and CRC check out: a
// torn or corrupt tail left by a crash is cut, logged (slog, Warn) and
// counted (sluice_buffer_corrupt_truncations_total,
// sluice_buffer_corrupt_bytes_total). Recovery never refuses to open
// because of the log's content, so a bad tail cannot cause a crash loop.
// A missing (while segments exist) or corrupt cursor file starts over from
// the oldest segment with a new log id (records are redelivered with new
// IDs, never lost), logged as an error and counted in
// sluice_buffer_cursor_recoveries_total{reason="missing"|"corrupt"}. In-flight
// batches that start before the committed position are dropped (they cannot
// be rebuilt).
//
// Older segments are not scanned at open (that would read the whole
// backlog). A corrupt frame found there by Read (bit rot, or a torn older
// segment after a power loss in mode os) is logged (Error) and counted
// (sluice_buffer_corrupt_skips_total) and Read skips to the next segment
// boundary, losing the rest of that segment, rather than stalling the
// stream forever on it. Since it is found at read time, the loss is
// visible in the metrics and logs rather than silent.
//
// # Source positions
//
// A source that reads a log of its own (the Kinesis source: a sequence
// number per shard) resumes where the buffer ends, so that a crash neither
// loses nor re-reads a record. Its checkpoint is the records themselves:
// with Options.Track{Key, Value}, every record whose metadata has Key
// (shardId) carries its position in Value (sequenceNumber), in the same
// frame and so in the same group commit. After each group is durable the
// writer notes, per Key, the Value of its last record; Positions returns
// that table, and it is exactly what is durable.
//
// Segments are deleted once delivered, and the positions in them with
// them, so the table is also saved in the file positions: "SLPS", version
// 1, three zero bytes, the position it covers (uint64: every frame before
// it is reflected), the entry count (uint32), the entries sorted by key
// (uvarint key length, key, uvarint value length, value), CRC32C of all
// before it; replaced like the cursor file. The writer saves it after each
// segment roll, and Commit before it deletes a segment the file does not
// cover yet, so it always covers the segments that are gone. Open reads it
// and scans the frames after the position it covers (normally only the
// active segment, which Open scans anyway), before deleting any segment.
// A missing (in a log that holds records) or corrupt file is logged,
// counted in sluice_buffer_position_recoveries_total{reason}, and rebuilt
// from every segment left: positions held only by deleted segments are
// then lost, and the source reads those shards from its starting position
// again.
//
// # Memory
//
// Read fetches frames with ReadAt (from the page cache) into one buffer
// allocated per call and sized from maxBytes (it grows only when the
// frames are smaller than assumed); the records' Data alias it, and it
// belongs to the caller with the records: no later Read reuses it, so the
// runner can keep several batches in flight. The log's own memory does not
// depend on the backlog: a few encode buffers, the segment list and the
// in-flight set. State does not wait for a Read in progress.
package disk
