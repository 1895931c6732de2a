package redshift

import (
	"bytes"
	"compress/bzip2"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// object is one S3 object a COPY loads.
type object struct {
	url, bucket, key string
	mandatory        bool
}

// s3Client is the client for one COPY: its credentials (the stand-in's own
// for IAM_ROLE, the statement's access keys otherwise) and region.
func (s *Server) s3Client(cmd *copyCmd) *s3.Client {
	key, secret, token := s.cfg.AccessKeyID, s.cfg.SecretAccessKey, ""
	if cmd.creds == CredentialsAccessKeys {
		key, secret, token = cmd.accessKeyID, cmd.secretAccessKey, cmd.sessionToken
	}
	region := cmd.region
	if region == "" {
		region = s.cfg.S3Region
	}
	return s3.New(s3.Options{
		Region:                     region,
		BaseEndpoint:               aws.String(s.cfg.S3Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(key, secret, token),
		HTTPClient:                 s.http,
		RetryMaxAttempts:           2,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// parseS3URL splits s3://bucket/key.
func parseS3URL(u string) (bucket, key string, ok bool) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", false
	}
	bucket, key, _ = strings.Cut(rest, "/")
	return bucket, key, bucket != ""
}

// s3Exception renders an S3 error the way Redshift reports one:
// S3ServiceException:<message>,Status <code>,Error <code>,Rid <id>,ExtRid <id>,CanRetry 1.
func s3Exception(err error) string {
	var api interface {
		ErrorCode() string
		ErrorMessage() string
	}
	var status interface{ HTTPStatusCode() int }
	var rid interface{ ServiceRequestID() string }
	var hid interface{ ServiceHostID() string }
	if !errors.As(err, &api) {
		return "S3ServiceException:" + err.Error()
	}
	code := 0
	if errors.As(err, &status) {
		code = status.HTTPStatusCode()
	}
	var r, h string
	if errors.As(err, &rid) {
		r = rid.ServiceRequestID()
	}
	if errors.As(err, &hid) {
		h = hid.ServiceHostID()
	}
	msg := api.ErrorMessage()
	if msg == "" {
		msg = api.ErrorCode()
	}
	return fmt.Sprintf("S3ServiceException:%s,Status %d,Error %s,Rid %s,ExtRid %s,CanRetry 1", msg, code, api.ErrorCode(), r, h)
}

// isNoSuchKey reports whether err says the object does not exist.
func isNoSuchKey(err error) bool {
	var api interface{ ErrorCode() string }
	if errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound") {
		return true
	}
	var status interface{ HTTPStatusCode() int }
	return errors.As(err, &status) && status.HTTPStatusCode() == 404 &&
		!(errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket")
}

func getObject(ctx context.Context, c *s3.Client, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("reading s3://%s/%s: %w", bucket, key, err)
	}
	return data, nil
}

// s3Failure is the XX000 error of a COPY that S3 refused.
func s3Failure(prefix, url string, err error) *pgconn.PgError {
	e := pgErr("XX000", "%s%s", prefix, s3Exception(err))
	e.Detail = fmt.Sprintf("\n  -----------------------------------------------\n  error:  %s\n  code:      8001\n"+
		"  context:   S3 key being read : %s\n  location:  redshift-standin\n  -----------------------------------------------\n",
		s3Exception(err), url)
	return e
}

// objects lists what a COPY loads: the manifest's entries, or every object
// under the FROM prefix.
func (l *loader) objects(ctx context.Context) ([]object, *pgconn.PgError) {
	bucket, key, ok := parseS3URL(l.cmd.from)
	if !ok {
		return nil, pgErr("XX000", "Invalid S3 URL %q", l.cmd.from)
	}
	if !l.cmd.manifest {
		var objs []object
		p := s3.NewListObjectsV2Paginator(l.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(key)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, s3Failure("", l.cmd.from, err)
			}
			for _, o := range page.Contents {
				k := aws.ToString(o.Key)
				objs = append(objs, object{url: "s3://" + bucket + "/" + k, bucket: bucket, key: k, mandatory: true})
			}
		}
		if len(objs) == 0 {
			return nil, pgErr("XX000", "The specified S3 prefix '%s' does not exist", key)
		}
		return objs, nil
	}
	data, err := getObject(ctx, l.s3, bucket, key)
	if err != nil {
		return nil, s3Failure("Problem reading manifest file - ", l.cmd.from, err)
	}
	var m struct {
		Entries *[]struct {
			URL       *string `json:"url"`
			Mandatory bool    `json:"mandatory"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Entries == nil {
		return nil, pgErr("XX000", "Manifest file is not in correct json format")
	}
	var objs []object
	for _, e := range *m.Entries {
		if e.URL == nil {
			return nil, pgErr("XX000", "Manifest file is not in correct json format")
		}
		b, k, ok := parseS3URL(*e.URL)
		if !ok || k == "" || strings.HasSuffix(k, "/") {
			return nil, pgErr("XX000", "COPY with MANIFEST parameter requires full path of an S3 object: %q", *e.URL)
		}
		objs = append(objs, object{url: *e.URL, bucket: b, key: k, mandatory: e.Mandatory})
	}
	return objs, nil
}

// decompress undoes the COPY's compression option.
func decompress(data []byte, how string) ([]byte, error) {
	var r io.Reader
	switch how {
	case "":
		return data, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		r = zr
	case "bzip2":
		r = bzip2.NewReader(bytes.NewReader(data))
	case "zstd":
		d, err := zstd.NewReader(nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer d.Close()
		out, err := d.DecodeAll(data, nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return out, nil
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", how, err)
	}
	return out, nil
}
