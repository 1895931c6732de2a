package s3store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// abortTimeout bounds the AbortMultipartUpload sent after a failure (its
// context is detached from the failed delivery's, which may be cancelled).
const abortTimeout = 30 * time.Second

// objectMeta is the metadata sent with an object.
type objectMeta struct {
	contentType     string
	contentEncoding string
	sse             types.ServerSideEncryption
	kmsKeyID        string
	storageClass    types.StorageClass
}

// upload streams one object to S3. It is an io.Writer: bytes are
// collected into a part buffer; when the first buffer fills, a multipart
// upload is created and every full buffer is sent as a part by a
// goroutine, at most concurrency at a time. Write blocks while all of them
// are busy, so at most concurrency+1 buffers of partSize bytes are alive
// per object (one being filled), whatever the object's size. An object
// that fits in one buffer is sent with a single PutObject by finish.
//
// It is the store's object.Object: Commit is finish, Abort is abort. On
// any failure, abort (called by the owner) cancels the parts in flight,
// waits for them and aborts the multipart upload, so no object becomes
// visible and no parts are left billed.
type upload struct {
	s    *Store
	ctx  context.Context // cancelled on the first part failure
	stop context.CancelFunc
	key  string
	meta objectMeta

	buf      []byte // part being filled, cap partSize
	size     int64  // bytes written so far
	uploadID *string
	nextPart int32

	slots chan struct{} // one token per part in flight
	free  chan []byte   // part buffers back from finished parts
	wg    sync.WaitGroup

	mu     sync.Mutex
	parts  []types.CompletedPart
	failed error

	done bool // committed or aborted: the buffers are released
}

// maxInitialBuffer is the largest first buffer of an upload; it doubles
// from there up to a part.
const maxInitialBuffer = 256 << 10

// newUpload starts an upload to key. sizeHint is the expected size of
// the object before compression: a small object gets a buffer of about its
// size (at most maxInitialBuffer) instead of a whole part, doubled as
// needed up to a part.
func (s *Store) newUpload(ctx context.Context, key string, meta objectMeta, sizeHint int) *upload {
	uctx, stop := context.WithCancel(ctx)
	var buf []byte
	if n := min(sizeHint+sizeHint/8+4096, maxInitialBuffer); n < s.partSize {
		buf = make([]byte, 0, n)
	} else {
		buf = make([]byte, 0, s.partSize)
	}
	return &upload{
		s:     s,
		ctx:   uctx,
		stop:  stop,
		key:   key,
		meta:  meta,
		buf:   buf,
		slots: make(chan struct{}, s.concurrency),
		free:  make(chan []byte, s.concurrency+1),
	}
}

// partBuf returns an empty part buffer: one a finished part gave back, or
// a new one. Parts in flight hold at most concurrency buffers (sendPart
// takes a slot first), so an upload allocates at most concurrency+1.
func (u *upload) partBuf() []byte {
	select {
	case b := <-u.free:
		return b[:0]
	default:
		return make([]byte, 0, u.s.partSize)
	}
}

// Write buffers p and sends every full part.
func (u *upload) Write(p []byte) (int, error) {
	if u.done {
		return 0, fmt.Errorf("s3 write s3://%s/%s: object already committed or aborted", u.s.bucket, u.key)
	}
	n := 0
	for len(p) > 0 {
		if err := u.err(); err != nil {
			return n, err
		}
		k := min(len(p), cap(u.buf)-len(u.buf))
		u.buf = append(u.buf, p[:k]...)
		p = p[k:]
		n += k
		u.size += int64(k)
		if len(u.buf) == cap(u.buf) && cap(u.buf) < u.s.partSize {
			// Grow by doubling: compressed objects are much smaller than
			// their records, so the buffer follows the output, not the hint.
			var grown []byte
			if n := 2 * cap(u.buf); n < u.s.partSize {
				grown = make([]byte, 0, n)
			} else {
				grown = u.partBuf()
			}
			u.buf = append(grown, u.buf...)
			continue
		}
		if len(u.buf) == cap(u.buf) {
			if err := u.sendPart(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (u *upload) err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.failed != nil {
		return u.failed
	}
	return u.ctx.Err()
}

func (u *upload) fail(err error) {
	u.mu.Lock()
	if u.failed == nil {
		u.failed = err
	}
	u.mu.Unlock()
	u.stop()
}

// sendPart hands the current buffer to a part goroutine, creating the
// multipart upload first if needed. It blocks while concurrency parts are
// in flight.
func (u *upload) sendPart() error {
	if u.uploadID == nil {
		out, err := u.s.client.CreateMultipartUpload(u.ctx, &s3.CreateMultipartUploadInput{
			Bucket:               &u.s.bucket,
			Key:                  &u.key,
			ContentType:          nonEmpty(u.meta.contentType),
			ContentEncoding:      nonEmpty(u.meta.contentEncoding),
			ServerSideEncryption: u.meta.sse,
			SSEKMSKeyId:          nonEmpty(u.meta.kmsKeyID),
			StorageClass:         u.meta.storageClass,
			ChecksumAlgorithm:    types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			err = u.s.classify(u.ctx, "create multipart upload", u.key, err)
			u.fail(err)
			return err
		}
		u.uploadID = out.UploadId
	}
	select {
	case u.slots <- struct{}{}:
	case <-u.ctx.Done():
		if err := u.err(); err != nil {
			return err
		}
		return u.ctx.Err()
	}
	u.nextPart++
	num, body := u.nextPart, u.buf
	u.buf = u.partBuf()
	u.wg.Go(func() {
		defer func() {
			select {
			case u.free <- body:
			default:
			}
			<-u.slots
		}()
		out, err := u.s.client.UploadPart(u.ctx, &s3.UploadPartInput{
			Bucket:            &u.s.bucket,
			Key:               &u.key,
			UploadId:          u.uploadID,
			PartNumber:        aws.Int32(num),
			Body:              bytes.NewReader(body),
			ContentLength:     aws.Int64(int64(len(body))),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			u.fail(u.s.classify(u.ctx, fmt.Sprintf("upload part %d", num), u.key, err))
			return
		}
		u.mu.Lock()
		u.parts = append(u.parts, types.CompletedPart{
			PartNumber:    aws.Int32(num),
			ETag:          out.ETag,
			ChecksumCRC32: out.ChecksumCRC32,
		})
		u.mu.Unlock()
	})
	return nil
}

// finish completes the object: a single PutObject when it fits in one
// part, else the last part and CompleteMultipartUpload.
func (u *upload) finish() error {
	if err := u.err(); err != nil {
		return err
	}
	if u.uploadID == nil {
		_, err := u.s.client.PutObject(u.ctx, &s3.PutObjectInput{
			Bucket:               &u.s.bucket,
			Key:                  &u.key,
			Body:                 bytes.NewReader(u.buf),
			ContentLength:        aws.Int64(int64(len(u.buf))),
			ContentType:          nonEmpty(u.meta.contentType),
			ContentEncoding:      nonEmpty(u.meta.contentEncoding),
			ServerSideEncryption: u.meta.sse,
			SSEKMSKeyId:          nonEmpty(u.meta.kmsKeyID),
			StorageClass:         u.meta.storageClass,
		})
		if err != nil {
			return u.s.classify(u.ctx, "put object", u.key, err)
		}
		return nil
	}
	if len(u.buf) > 0 {
		if err := u.sendPart(); err != nil {
			return err
		}
	}
	u.wg.Wait()
	if err := u.err(); err != nil {
		return err
	}
	parts := slices.Clone(u.parts)
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	_, err := u.s.client.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &u.s.bucket,
		Key:             &u.key,
		UploadId:        u.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return u.s.classify(u.ctx, "complete multipart upload", u.key, err)
	}
	return nil
}

// abort stops the parts in flight, waits for them and aborts the
// multipart upload if one was created. It is called after any failure
// (including a cancelled context) and never returns an error: a failed
// abort is logged (a bucket lifecycle rule for incomplete uploads is the
// backstop).
func (u *upload) abort() {
	u.stop()
	u.wg.Wait()
	if u.uploadID == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), abortTimeout)
	defer cancel()
	_, err := u.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   &u.s.bucket,
		Key:      &u.key,
		UploadId: u.uploadID,
	})
	if err != nil {
		u.s.log.Warn("abort multipart upload failed; parts stay until a lifecycle rule removes them",
			"bucket", u.s.bucket, "key", u.key, "upload_id", aws.ToString(u.uploadID), "error", err)
	}
}

// Commit completes the object (finish); after a failure the upload is
// aborted. The upload must not be used afterwards.
func (u *upload) Commit() error {
	if u.done {
		return fmt.Errorf("s3 commit s3://%s/%s: object already committed or aborted", u.s.bucket, u.key)
	}
	err := u.finish()
	if err != nil {
		u.abort()
	}
	u.release()
	return err
}

// Abort drops the object (abort) unless it was committed.
func (u *upload) Abort() {
	if u.done {
		return
	}
	u.abort()
	u.release()
}

// release drops the buffers. The upload must not be used afterwards.
func (u *upload) release() {
	u.done = true
	u.stop()
	u.buf = nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
