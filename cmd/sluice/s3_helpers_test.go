package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

// s3Client talks to an s3rver endpoint with its fixed credentials.
func s3Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(testpeers.S3rverAccessKey, testpeers.S3rverSecretKey, ""),
	})
}

// s3Objects lists every object key under prefix with its content, read back
// through the AWS SDK.
func s3Objects(t *testing.T, c *s3.Client, bucket, prefix string) map[string][]byte {
	t.Helper()
	out, err := s3ObjectsErr(c, bucket, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// s3ObjectsErr is s3Objects returning the error, for polling while the
// daemon still writes (s3rver can fail a listing that races a write).
func s3ObjectsErr(c *s3.Client, bucket, prefix string) (map[string][]byte, error) {
	ctx := context.Background()
	out := map[string][]byte{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				return nil, fmt.Errorf("get %s: %w", aws.ToString(o.Key), err)
			}
			b, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", aws.ToString(o.Key), err)
			}
			out[aws.ToString(o.Key)] = b
		}
	}
	return out, nil
}

// saveObject writes an object's bytes to dir under its key's base name.
func saveObject(t *testing.T, dir, key string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, filepath.Base(key))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func splitLines(b []byte) []string {
	var out []string
	for _, l := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		if len(l) > 0 {
			out = append(out, string(l))
		}
	}
	return out
}

// s3rverDestination is the body of an s3 destination block (keys indented
// for "    destination:") writing to bucket on the s3rver at endpoint.
func s3rverDestination(bucket, endpoint string) string {
	return fmt.Sprintf(`      type: s3
      bucket: %s
      endpoint: %s
      force_path_style: true
      access_key_id: %s
      secret_access_key: %s
`, bucket, endpoint, testpeers.S3rverAccessKey, testpeers.S3rverSecretKey)
}
