package checks_test

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/config"
)

// instruction is one Containerfile instruction.
type instruction struct {
	line  int
	cmd   string            // upper case: FROM, RUN, COPY, ...
	flags map[string]string // leading --name=value (COPY --from, --chown)
	args  []string          // exec form, or the shell form's words
	raw   string            // the arguments as written (after the flags)
	exec  bool              // JSON (exec) form
}

type stage struct {
	name   string // AS name, or its index
	from   string // the base image, ARGs expanded
	instrs []instruction
}

type containerfile struct {
	args   map[string]string // global ARGs (before the first FROM)
	stages []*stage
}

// parseContainerfile reads the Dockerfile syntax the build file uses:
// comments, line continuations, exec and shell forms, flags.
func parseContainerfile(t *testing.T, file string) *containerfile {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cf := &containerfile{args: map[string]string{}}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		text := strings.TrimSpace(lines[i])
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				continue
			}
			text = strings.TrimSuffix(text, `\`) + " " + next
		}
		cmd, rest, _ := strings.Cut(text, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), flags: map[string]string{}}
		rest = strings.TrimSpace(rest)
		if in.cmd == "COPY" || in.cmd == "RUN" || in.cmd == "ADD" {
			for strings.HasPrefix(rest, "--") {
				flag, after, _ := strings.Cut(rest, " ")
				k, v, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
				in.flags[k] = v
				rest = strings.TrimSpace(after)
			}
		}
		in.raw = rest
		if strings.HasPrefix(rest, "[") {
			if err := json.Unmarshal([]byte(rest), &in.args); err != nil {
				t.Fatalf("%s:%d: %s: bad exec form: %v", file, start, in.cmd, err)
			}
			in.exec = true
		} else {
			in.args = strings.Fields(rest)
		}
		switch {
		case in.cmd == "FROM":
			s := &stage{name: fmt.Sprint(len(cf.stages)), from: os.Expand(in.args[0], func(k string) string { return cf.args[k] })}
			if len(in.args) == 3 && strings.EqualFold(in.args[1], "AS") {
				s.name = in.args[2]
			}
			cf.stages = append(cf.stages, s)
		case len(cf.stages) == 0:
			if in.cmd != "ARG" {
				t.Fatalf("%s:%d: %s before the first FROM", file, start, in.cmd)
			}
			k, v, _ := strings.Cut(in.raw, "=")
			cf.args[k] = v
		default:
			s := cf.stages[len(cf.stages)-1]
			s.instrs = append(s.instrs, in)
		}
	}
	return cf
}

func (cf *containerfile) stage(name string) *stage {
	for _, s := range cf.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// envWords splits ENV's K=V pairs (or its legacy "K V" form).
func envWords(t *testing.T, in instruction) [][2]string {
	t.Helper()
	if len(in.args) > 0 && !strings.Contains(in.args[0], "=") {
		return [][2]string{{in.args[0], strings.TrimSpace(strings.TrimPrefix(in.raw, in.args[0]))}}
	}
	var kv [][2]string
	for _, w := range in.args {
		k, v, ok := strings.Cut(w, "=")
		if !ok || strings.ContainsAny(v, `"'`) {
			t.Fatalf("line %d: ENV %q: only unquoted K=V pairs are emulated", in.line, w)
		}
		kv = append(kv, [2]string{k, v})
	}
	return kv
}

// ignoreMatcher reads a .dockerignore: a path is excluded when a pattern
// matches it or one of its parents (Docker's rule). Patterns use *, ? and
// **; exceptions (!) are refused rather than emulated wrongly.
func ignoreMatcher(t *testing.T, file string) func(rel string) bool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var res []*regexp.Regexp
	for _, line := range strings.Split(string(data), "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if strings.HasPrefix(p, "!") {
			t.Fatalf("%s: exception %q: not emulated by this test", file, p)
		}
		p = path.Clean(strings.TrimPrefix(p, "/"))
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case p[i] == '*':
				re.WriteString("[^/]*")
			case p[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		re.WriteString("$")
		res = append(res, regexp.MustCompile(re.String()))
	}
	return func(rel string) bool {
		for p := rel; p != "." && p != "/" && p != ""; p = path.Dir(p) {
			for _, re := range res {
				if re.MatchString(p) {
					return true
				}
			}
		}
		return false
	}
}

// copyContext copies src (a file or directory of the build context) to
// dst, leaving out what the ignore file excludes.
func copyContext(t *testing.T, context, src, dst string, ignored func(string) bool) {
	t.Helper()
	root := filepath.Join(context, src)
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(context, p)
		if ignored(filepath.ToSlash(rel)) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		sub, _ := filepath.Rel(root, p)
		target := filepath.Join(dst, sub)
		info, err := e.Info()
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		}
		return nil // sockets and the like are not context
	})
	if err != nil {
		t.Fatalf("COPY %s: %v", src, err)
	}
}

// TestContainerfileBuildsTheReleaseBinary runs the build stage of
// deploy/container/Containerfile without a container engine: its ARGs and
// ENVs become the environment, WORKDIR and the paths the stages exchange
// are directories under a temporary root, COPY copies the build context
// (the repository, less Containerfile.dockerignore) and each RUN runs with
// /bin/sh -c as the engine would. The binary the final stage copies must
// be a static ELF (no interpreter, no dynamic section, no libraries),
// stripped (-s -w), print the VERSION given as a build argument, and be
// byte-identical to `make release` with the same VERSION (built by
// TestMain in the repository itself: another directory, so -trimpath is
// what makes them equal). The Go toolchain is this machine's; the image
// builds with golang:1.26's, so equality holds for the same Go release.
func TestContainerfileBuildsTheReleaseBinary(t *testing.T) {
	cf := parseContainerfile(t, repoPath("deploy/container/Containerfile"))
	final := cf.stages[len(cf.stages)-1]
	// What the final stage takes from the build: its binary is the one
	// ENTRYPOINT runs.
	entry := instructionOf(t, final, "ENTRYPOINT")
	var binSrc, buildName string
	roots := map[string]bool{}
	for _, in := range final.instrs {
		if from := in.flags["from"]; in.cmd == "COPY" && from != "" {
			buildName = from
			src := in.args[0]
			roots[strings.Split(strings.TrimPrefix(src, "/"), "/")[0]] = true
			if in.args[len(in.args)-1] == entry.args[0] {
				binSrc = src
			}
		}
	}
	if binSrc == "" {
		t.Fatalf("the final stage copies no file from a build stage to the ENTRYPOINT binary %s", entry.args[0])
	}
	build := cf.stage(buildName)
	if build == nil {
		t.Fatalf("COPY --from=%s: no such stage", buildName)
	}
	if !strings.HasPrefix(build.from, "golang:1.26") {
		t.Fatalf("build stage %s is FROM %s, want golang:1.26 (the Go release of go.mod)", build.name, build.from)
	}

	rootfs := t.TempDir()
	ignored := ignoreMatcher(t, repoPath("deploy/container/Containerfile.dockerignore"))
	vars := map[string]string{}
	buildArgs := map[string]string{"VERSION": releaseVersion} // --build-arg VERSION=...
	workdir := "/"
	for _, in := range build.instrs {
		if in.cmd == "WORKDIR" {
			roots[strings.Split(strings.TrimPrefix(in.args[0], "/"), "/")[0]] = true
		}
	}
	host := func(p string) string {
		if !path.IsAbs(p) {
			p = path.Join(workdir, p)
		}
		return filepath.Join(rootfs, filepath.FromSlash(p))
	}
	// An absolute path in a RUN is mapped under rootfs when it is one of
	// the stage's own directories; any other would mean the build depends
	// on the image's file system, which this emulation cannot vouch for.
	absPath := regexp.MustCompile(`(^|[\s=:"'(])(/[A-Za-z0-9._/-]*)`)
	ran := 0
	for _, in := range build.instrs {
		switch in.cmd {
		case "ARG":
			k, v, _ := strings.Cut(in.raw, "=")
			if b, ok := buildArgs[k]; ok {
				v = b
			}
			vars[k] = v
		case "ENV":
			for _, kv := range envWords(t, in) {
				vars[kv[0]] = os.Expand(kv[1], func(k string) string { return vars[k] })
			}
		case "WORKDIR":
			workdir = path.Join(workdir, in.args[0])
			if err := os.MkdirAll(host(workdir), 0o755); err != nil {
				t.Fatal(err)
			}
		case "COPY":
			if len(in.flags) > 0 {
				t.Fatalf("line %d: COPY %v in the build stage: flags not emulated", in.line, in.flags)
			}
			srcs, dst := in.args[:len(in.args)-1], in.args[len(in.args)-1]
			for _, src := range srcs {
				if fi, err := os.Stat(filepath.Join(repoRoot, src)); err == nil && !fi.IsDir() {
					target := host(dst)
					if strings.HasSuffix(dst, "/") || len(srcs) > 1 {
						target = filepath.Join(target, filepath.Base(src))
					}
					_ = os.MkdirAll(filepath.Dir(target), 0o755)
					copyContext(t, repoRoot, src, target, ignored)
					continue
				}
				copyContext(t, repoRoot, src, host(dst), ignored)
			}
		case "RUN":
			if len(in.flags) > 0 {
				t.Fatalf("line %d: RUN %v: flags not emulated", in.line, in.flags)
			}
			argv := []string{"/bin/sh", "-c", in.raw}
			if in.exec {
				argv = slices.Clone(in.args)
			}
			for i := range argv[1:] {
				var bad error
				argv[i+1] = absPath.ReplaceAllStringFunc(argv[i+1], func(m string) string {
					sub := absPath.FindStringSubmatch(m)
					first := strings.Split(strings.TrimPrefix(sub[2], "/"), "/")[0]
					if !roots[first] {
						bad = fmt.Errorf("line %d: RUN uses %s, outside the stage's own directories %v", in.line, sub[2], roots)
						return m
					}
					return sub[1] + filepath.Join(rootfs, sub[2])
				})
				if bad != nil {
					t.Fatal(bad)
				}
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Dir = host(workdir)
			cmd.Env = buildEnv()
			for k, v := range vars {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("Containerfile line %d: RUN %s: %v\n%s", in.line, in.raw, err, out)
			}
			ran++
		case "LABEL", "EXPOSE", "USER", "SHELL", "STOPSIGNAL":
		default:
			t.Fatalf("line %d: %s in the build stage: not emulated", in.line, in.cmd)
		}
	}
	if ran == 0 {
		t.Fatal("the build stage has no RUN")
	}

	bin := filepath.Join(rootfs, filepath.FromSlash(binSrc))
	if err := checkStaticStripped(bin); err != nil {
		t.Fatalf("%s (the image's %s): %v", binSrc, entry.args[0], err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "sluice "+releaseVersion {
		t.Fatalf("%s version: %q, %v; want \"sluice %s\" (ARG VERSION)", binSrc, out, err, releaseVersion)
	}
	if err := checkStaticStripped(releaseBin); err != nil {
		t.Fatalf("make release: %v", err)
	}
	a, b := mustRead(t, bin), mustRead(t, releaseBin)
	if !bytes.Equal(a, b) {
		t.Fatalf("the Containerfile's binary (%d bytes, sha256 %x) differs from make release's (%d bytes, sha256 %x): the build commands disagree",
			len(a), sha256.Sum256(a), len(b), sha256.Sum256(b))
	}
	t.Logf("Containerfile and make release: the same %d bytes, sha256 %x", len(a), sha256.Sum256(a))
}

// TestContainerImageRunsAsDocumented checks the final stage: a
// distroless or scratch base, a non-root numeric USER, the data volume
// owned by it, the ENTRYPOINT's flags accepted by the daemon with the
// image's configuration, and the exposed port the one it listens on, on
// every interface.
func TestContainerImageRunsAsDocumented(t *testing.T) {
	cf := parseContainerfile(t, repoPath("deploy/container/Containerfile"))
	final := cf.stages[len(cf.stages)-1]
	if !strings.Contains(final.from, "distroless/static") && final.from != "scratch" {
		t.Fatalf("final stage FROM %s: want distroless/static or scratch (a static binary needs nothing else)", final.from)
	}
	user := instructionOf(t, final, "USER").args[0]
	uid, _, _ := strings.Cut(user, ":")
	if uid != "65532" {
		t.Fatalf("USER %s: want 65532 (distroless's nonroot, numeric so that runAsNonRoot can verify it)", user)
	}
	entry := instructionOf(t, final, "ENTRYPOINT")
	if !entry.exec {
		t.Fatal("ENTRYPOINT must be the exec form: a shell form runs under /bin/sh, which distroless lacks, and SIGTERM would not reach sluice")
	}
	flags := runFlags(t, entry.args)
	volume := instructionOf(t, final, "VOLUME")
	if !slices.Contains(volume.args, flags.dataDir) && volume.raw != fmt.Sprintf("[%q]", flags.dataDir) {
		t.Fatalf("VOLUME %s does not hold --data-dir %s: the buffers would live in the container's writable layer", volume.raw, flags.dataDir)
	}
	var owned bool
	var configSrc string
	for _, in := range final.instrs {
		if in.cmd != "COPY" {
			continue
		}
		dst := in.args[len(in.args)-1]
		if dst == flags.dataDir {
			owner, _, _ := strings.Cut(in.flags["chown"], ":")
			owned = owner == uid
		}
		if dst == flags.config && in.flags["from"] == "" {
			configSrc = in.args[0]
		}
	}
	if !owned {
		t.Fatalf("no COPY --chown=%s creates %s: the volume would be root's and the daemon could not write its buffers", uid, flags.dataDir)
	}
	if configSrc == "" {
		t.Fatalf("no COPY from the context puts a configuration at %s (-c)", flags.config)
	}
	// The image's configuration, with its ENTRYPOINT flags, validates.
	args := append([]string{"validate"}, entry.args[2:]...)
	for i, a := range args {
		switch a {
		case flags.config:
			args[i] = repoPath(configSrc)
		case flags.dataDir:
			args[i] = t.TempDir()
		}
	}
	if out, err := exec.Command(releaseBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	cfg, err := config.Load(repoPath(configSrc))
	if err != nil {
		t.Fatal(err)
	}
	ops := cfg.Listen
	if cfg.AdminListen != "" {
		ops = cfg.AdminListen
	}
	expose := instructionOf(t, final, "EXPOSE").args
	for _, addr := range []string{cfg.Listen, ops} {
		h, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
			t.Fatalf("%s listens on %s: a published port cannot reach a loopback listener inside the container", configSrc, addr)
		}
		if !slices.Contains(expose, port) && !slices.Contains(expose, port+"/tcp") {
			t.Fatalf("EXPOSE %v lacks port %s (%s)", expose, port, addr)
		}
	}
}

// TestStaticCheckRejectsDynamic shows checkStaticStripped can fail: a
// dynamically linked program and an unstripped Go binary are refused.
func TestStaticCheckRejectsDynamic(t *testing.T) {
	if err := checkStaticStripped("/bin/sh"); err == nil || !strings.Contains(err.Error(), "interpreter") {
		t.Fatalf("/bin/sh (dynamic): %v, want an interpreter error", err)
	}
	unstripped := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command("go", "build", "-trimpath", "-o", unstripped, "./cmd/sluice")
	cmd.Dir, cmd.Env = repoRoot, append(buildEnv(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := checkStaticStripped(unstripped); err == nil || !strings.Contains(err.Error(), "symbol") {
		t.Fatalf("a build without -s -w: %v, want a symbol table error", err)
	}
}

func instructionOf(t *testing.T, s *stage, cmd string) instruction {
	t.Helper()
	var found []instruction
	for _, in := range s.instrs {
		if in.cmd == cmd {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		t.Fatalf("stage %s: %d %s instructions, want 1", s.name, len(found), cmd)
	}
	return found[0]
}

// checkStaticStripped says why file is not a static, stripped ELF.
func checkStaticStripped(file string) error {
	f, err := elf.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			r := io.LimitReader(p.Open(), 256)
			b, _ := io.ReadAll(r)
			return fmt.Errorf("dynamically linked: program interpreter %s", bytes.TrimRight(b, "\x00"))
		case elf.PT_DYNAMIC:
			return fmt.Errorf("dynamically linked: PT_DYNAMIC segment")
		}
	}
	if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
		return fmt.Errorf("dynamically linked: .dynamic or .interp section")
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		return fmt.Errorf("not stripped: a symbol table (.symtab) is present (-s missing)")
	}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			return fmt.Errorf("not stripped: DWARF section %s (-w missing)", s.Name)
		}
	}
	return nil
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// daemonFlags are the flags of a `sluice run` command line.
type daemonFlags struct{ config, dataDir string }

// runFlags reads argv ([binary, "run", flags...]) as `sluice run` does
// and requires both -c/--config and --data-dir.
func runFlags(t *testing.T, argv []string) daemonFlags {
	t.Helper()
	if len(argv) < 2 || path.Base(argv[0]) != "sluice" || argv[1] != "run" {
		t.Fatalf("%q is not `sluice run ...`", argv)
	}
	var f daemonFlags
	for i := 2; i < len(argv); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(argv[i], "-"), "=")
		if !hasVal && i+1 < len(argv) {
			i++
			val = argv[i]
		}
		switch name {
		case "c", "config":
			f.config = val
		case "data-dir":
			f.dataDir = val
		default:
			t.Fatalf("%q: flag %s is not one of sluice run's", argv, argv[i])
		}
	}
	if f.config == "" || f.dataDir == "" {
		t.Fatalf("%q: want both -c FILE and --data-dir DIR", argv)
	}
	return f
}
