// Package disk is the durable buffer.Buffer: one append-only, segmented log
// per stream, made durable by group commit.
//
// # Directory
//
// A stream's directory (Options.Dir) holds:
//
//	00000000000000000000.seg   segment files, named by the logical position
//	00000000000067108880.seg   (byte offset) of their first frame, 20 digits
//	cursor                     committed position, in-flight batch, log id
//	cursor.tmp                 transient: the next cursor, before its rename
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
//	16     1     flags: bit 0 = metadata section present; others must be 0
//	17     M     metadata section, only when flag bit 0 is set:
//	               uvarint count, then count times:
//	               uvarint key length, key bytes, uvarint value length, value bytes
//	17+M   D     record data (D = L - 9 - M, may be 0)
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
// 44 bytes: "SLCU", version byte (1), 3 zero bytes, log id (8 bytes),
// committed position (uint64), in-flight batch first and end positions
// (uint64 each; end 0 = none), CRC32C of the preceding 40 bytes. It is
// replaced atomically: written to cursor.tmp, fsynced, renamed over cursor,
// then the directory is fsynced. MarkInflight and Commit return after that.
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
// is cut off and fails its group and everything queued behind it; a failed
// fsync makes the log refuse appends until reopened (the kernel may have
// dropped the unsynced pages, so recovery must decide what survived).
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
// A missing or corrupt cursor file starts over from the oldest segment with
// a new log id (records are redelivered, never lost), logged as an error.
//
// Older segments are not scanned at open (that would read the whole
// backlog). A corrupt frame found there by Read (bit rot, or a torn older
// segment after a power loss in mode os) is logged (Error) and counted
// (sluice_buffer_corrupt_skips_total) and Read skips to the next segment
// boundary, losing the rest of that segment, rather than stalling the
// stream forever on it. Since it is found at read time, the loss is
// visible in the metrics and logs rather than silent.
//
// # Memory
//
// Read fetches frames with ReadAt (from the page cache) into a buffer reused
// from call to call; Data slices alias it. Memory use does not depend on
// the backlog: a few encode buffers, the read buffer and the segment list.
package disk
