package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/pipeline/assemble"
)

// cmdDecrypt writes the plaintext of files Sluice encrypted at rest (the
// objects of file destinations and error outputs) to stdout, with the keys
// of the configuration; files written in the clear are copied as they
// are.
func cmdDecrypt(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("decrypt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: sluice decrypt -c FILE OBJECT...\n\nWrites the decrypted contents of each object (a file destination's or error output's file) to stdout.")
		fs.PrintDefaults()
	}
	path := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cfg, err := config.Load(*path)
	var ce config.Errors
	if errors.As(err, &ce) {
		printConfigErrors(stderr, ce)
		return 1
	}
	if err != nil {
		return exitCode(err, stderr)
	}
	for _, name := range fs.Args() {
		if err := decryptFile(cfg, name, stdout); err != nil {
			if errors.As(err, &ce) {
				printConfigErrors(stderr, ce)
				return 1
			}
			return exitCode(fmt.Errorf("decrypt: %w", err), stderr)
		}
	}
	return 0
}

func decryptFile(cfg *config.Config, name string, w io.Writer) error {
	r, err := assemble.OpenEncrypted(cfg, name)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
