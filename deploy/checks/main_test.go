package checks_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The release binary every test runs, built once by TestMain with
// `make release` as the README documents, and the VERSION it carries.
var (
	repoRoot   string
	releaseBin string
)

const releaseVersion = "v0.0.0-checks"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "sluice-checks-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	releaseBin = filepath.Join(dir, "sluice")
	if err := makeRelease(releaseBin, releaseVersion); err != nil {
		fmt.Fprintln(os.Stderr, "make release:", err)
		return 1
	}
	return m.Run()
}

// makeRelease runs `make release` in the repository with the given output
// and VERSION, in buildEnv.
func makeRelease(out, version string) error {
	cmd := exec.Command("make", "-s", "-C", repoRoot, "release", "RELEASE_OUT="+out, "VERSION="+version)
	cmd.Env = buildEnv()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// buildEnv is the environment of every build: this process's, without
// the variables that change what the Go toolchain produces, so that only
// the build file under test (the Makefile, the Containerfile) decides
// them. Caches and proxies stay: they change how fast, not what.
func buildEnv() []string {
	drop := map[string]bool{
		"GOFLAGS": true, "CGO_ENABLED": true, "GOOS": true, "GOARCH": true, "GOAMD64": true,
		"GOARM64": true, "GO386": true, "GOEXPERIMENT": true, "GODEBUG": true, "CC": true, "CXX": true,
		"CGO_CFLAGS": true, "CGO_LDFLAGS": true, "CGO_CPPFLAGS": true, "CGO_CXXFLAGS": true, "GOENV": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	// No go env file either: GOFLAGS or CGO_ENABLED set there would
	// otherwise apply (an empty variable falls back to it).
	return append(env, "GOENV=off", "GOFLAGS=")
}

// needTool returns the path of a program the test cannot do without, or
// fails the test saying how to get it.
func needTool(t *testing.T, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if gobin, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(gobin)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s is required by this test and is not installed: %s", name, install)
	return ""
}

func repoPath(rel string) string { return filepath.Join(repoRoot, filepath.FromSlash(rel)) }
