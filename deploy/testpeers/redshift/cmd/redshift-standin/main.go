// Command redshift-standin runs the Redshift stand-in (package
// deploy/testpeers/redshift) as a program, for shell benchmarks and
// end-to-end tests: a PostgreSQL-wire server that forwards statements to a
// real PostgreSQL and runs Redshift's COPY ... FROM 's3://...' against an S3
// server. It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-dev/sluice/deploy/testpeers/redshift"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "redshift-standin:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:5439", "address to listen on")
	upstream := flag.String("upstream", "postgres://root@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL DSN to forward to")
	endpoint := flag.String("s3-endpoint", "http://127.0.0.1:4569", "S3 endpoint URL (path-style)")
	region := flag.String("s3-region", "us-east-1", "S3 region")
	password := flag.String("password", "", "password clients must give (empty: trust); also read from REDSHIFT_STANDIN_PASSWORD")
	accessKey := flag.String("s3-access-key", "S3RVER", "S3 access key used for COPY ... IAM_ROLE")
	secretKey := flag.String("s3-secret-key", "S3RVER", "S3 secret key used for COPY ... IAM_ROLE; also read from REDSHIFT_STANDIN_S3_SECRET")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()
	if *password == "" {
		*password = os.Getenv("REDSHIFT_STANDIN_PASSWORD")
	}
	if v := os.Getenv("REDSHIFT_STANDIN_S3_SECRET"); v != "" {
		*secretKey = v
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := redshift.Start(redshift.Config{
		Upstream: *upstream, S3Endpoint: *endpoint, S3Region: *region, Password: *password,
		AccessKeyID: *accessKey, SecretAccessKey: *secretKey, Listen: *listen, Logger: log,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println(srv.Addr())
	<-ctx.Done()
	log.Info("stopping")
	return srv.Close()
}
