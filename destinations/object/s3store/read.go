package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluice-dev/sluice/destinations/object"
)

var _ object.Reader = (*Store)(nil)

// listPageSize is ListObjectsV2's MaxKeys (0: S3's default, 1000); tests
// lower it to page through few keys.
var listPageSize int32

// List returns the objects whose keys start with prefix (ListObjectsV2,
// every page), sorted by key.
func (s *Store) List(ctx context.Context, prefix string) ([]object.Info, error) {
	var out []object.Info
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	if listPageSize > 0 {
		in.MaxKeys = aws.Int32(listPageSize)
	}
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.classify(ctx, "list", prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, object.Info{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
		}
	}
	// S3 lists in UTF-8 binary order already; some compatible stores do
	// not.
	slices.SortFunc(out, func(a, b object.Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Open sends GetObject for key; the body streams as it is read. A missing
// key is an error wrapping fs.ErrNotExist.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, fmt.Errorf("s3 get s3://%s/%s: %w (%w)", s.bucket, key, fs.ErrNotExist, err)
		}
		return nil, s.classify(ctx, "get", key, err)
	}
	return out.Body, nil
}
