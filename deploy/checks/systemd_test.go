package checks_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/config"
)

const unitFile = "deploy/systemd/sluice.service"

// unit is a parsed unit file: section → key → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, file string) unit {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s: cannot read %q", file, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// one returns the single value of key in [Service].
func (u unit) one(t *testing.T, key string) string {
	t.Helper()
	v := u["Service"][key]
	if len(v) != 1 {
		t.Fatalf("%s: [Service] %s= is set %d times, want once", unitFile, key, len(v))
	}
	return v[0]
}

// unitWithBinary writes the unit to a temporary directory with
// /usr/bin/sluice replaced by the release binary, for systemd-analyze,
// which checks that ExecStart's program exists.
func unitWithBinary(t *testing.T) string {
	t.Helper()
	data := mustRead(t, repoPath(unitFile))
	if !strings.Contains(string(data), "ExecStart=/usr/bin/sluice ") {
		t.Fatalf("%s: ExecStart does not run /usr/bin/sluice", unitFile)
	}
	p := filepath.Join(t.TempDir(), "sluice.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(data), "/usr/bin/sluice", releaseBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSystemdUnitVerifies runs `systemd-analyze verify` on the unit (with
// the real binary as ExecStart). It loads the unit as systemd would:
// every key must be known and its value parse (unknown keys, bad
// durations, unknown system call groups are only warnings to systemd, so
// any output fails the test), ExecStart's and ExecReload's programs must
// exist and be executable, and the units it names (network-online.target,
// multi-user.target) must exist. A deliberately broken copy must fail, so
// the tool is known to be checking.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "apt-get install systemd")
	verify := func(p string) (string, error) {
		out, err := exec.Command(analyze, "verify", "--man=no", p).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	p := unitWithBinary(t)
	if out, err := verify(p); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
	bad := filepath.Join(t.TempDir(), "sluice.service")
	data := strings.Replace(string(mustRead(t, p)), "TimeoutStopSec=", "TimeoutStopSecs=", 1)
	if err := os.WriteFile(bad, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(bad); err == nil && out == "" {
		t.Fatal("systemd-analyze verify accepted a unit with an unknown key: it checks nothing here")
	}
}

// TestSystemdUnitSecurity requires systemd's own exposure score of the
// unit's sandbox to be "OK" (below 2.0 of 10).
func TestSystemdUnitSecurity(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "apt-get install systemd")
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", unitWithBinary(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for sluice\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level >= 2.0 {
		t.Fatalf("exposure level %.1f, want below 2.0:\n%s", level, out)
	}
	t.Logf("systemd-analyze security: exposure %s", m[1])
}

// TestSystemdUnitMatchesDaemon checks the unit against the daemon and the
// shipped configuration: ExecStart's flags are sluice run's and validate
// the configuration; the data directory is the unit's StateDirectory and
// writable (ReadWritePaths) under ProtectSystem=strict, and so is every
// local destination; TimeoutStopSec leaves the drain its shutdown_timeout
// and 10 s to close; ExecReload sends SIGHUP.
func TestSystemdUnitMatchesDaemon(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "apt-get install systemd")
	u := parseUnit(t, repoPath(unitFile))
	argv := strings.Fields(u.one(t, "ExecStart"))
	flags := runFlags(t, argv)
	if flags.config != "/etc/sluice/sluice.yaml" {
		t.Fatalf("-c %s: deploy/README.md installs the configuration as /etc/sluice/sluice.yaml", flags.config)
	}
	if got, want := flags.dataDir, "/var/lib/"+u.one(t, "StateDirectory"); got != want {
		t.Fatalf("--data-dir %s is not the StateDirectory %s", got, want)
	}
	if u.one(t, "ProtectSystem") != "strict" {
		t.Fatal("ProtectSystem=strict is the premise of the writable-path checks below")
	}
	writable := strings.Fields(strings.Join(u["Service"]["ReadWritePaths"], " "))
	if !slices.Contains(writable, flags.dataDir) {
		t.Fatalf("ReadWritePaths %v lacks --data-dir %s", writable, flags.dataDir)
	}

	cfgFile := repoPath("deploy/systemd/sluice.yaml")
	args := []string{"validate", "-c", cfgFile, "--data-dir", t.TempDir()}
	if out, err := exec.Command(releaseBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range cfg.Streams {
		for _, c := range []config.Component{s.Destination, s.ErrorOutput} {
			if c.IsZero() || c.Type != "file" {
				continue
			}
			var opts struct {
				Path string `yaml:"path"`
			}
			if err := c.Node.Decode(&opts); err != nil {
				t.Fatal(err)
			}
			p := opts.Path
			if !filepath.IsAbs(p) {
				p = filepath.Join(flags.dataDir, p)
			}
			ok := false
			for _, w := range writable {
				if rel, err := filepath.Rel(w, p); err == nil && !strings.HasPrefix(rel, "..") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s writes to %s, outside ReadWritePaths %v: ProtectSystem=strict refuses it", c.Path, p, writable)
			}
		}
	}

	timespan := func(v string) time.Duration {
		out, err := exec.Command(analyze, "timespan", v).CombinedOutput()
		m := regexp.MustCompile(`μs: (\d+)`).FindSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("systemd-analyze timespan %q: %v\n%s", v, err, out)
		}
		us, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return time.Duration(us) * time.Microsecond
	}
	if stop := timespan(u.one(t, "TimeoutStopSec")); stop < cfg.ShutdownTimeout+10*time.Second {
		t.Fatalf("TimeoutStopSec %v: the drain takes up to shutdown_timeout %v, and closing the buffers after it; want at least %v",
			stop, cfg.ShutdownTimeout, cfg.ShutdownTimeout+10*time.Second)
	}
	if r := u.one(t, "ExecReload"); r != "/bin/kill -HUP $MAINPID" {
		t.Fatalf("ExecReload=%s, want /bin/kill -HUP $MAINPID", r)
	}
	if sig := u["Service"]["KillSignal"]; len(sig) > 0 && sig[0] != "SIGTERM" {
		t.Fatalf("KillSignal=%s: the daemon drains on SIGTERM", sig[0])
	}
}

// syscallGroups reads every group `systemd-analyze syscall-filter` knows.
func syscallGroups(t *testing.T, analyze string) map[string][]string {
	t.Helper()
	out, err := exec.Command(analyze, "syscall-filter", "--no-pager").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	groups := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch trimmed := strings.TrimSpace(line); {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case strings.HasPrefix(line, "@"):
			cur = trimmed
		case cur != "" && (line[0] == ' ' || line[0] == '\t'):
			groups[cur] = append(groups[cur], trimmed)
		}
	}
	if len(groups["@system-service"]) == 0 {
		t.Fatalf("no @system-service in systemd-analyze syscall-filter:\n%s", out)
	}
	return groups
}

func expandSyscalls(groups map[string][]string, names []string, into map[string]bool) {
	for _, n := range names {
		if strings.HasPrefix(n, "@") {
			expandSyscalls(groups, groups[n], into)
		} else {
			into[n] = true
		}
	}
}

// TestSystemdSyscallFilter runs the daemon as the unit does (its flags,
// the shipped configuration on a free port) under strace: start, puts,
// readiness, a scrape, SIGTERM and the drain that delivers the records.
// Every system call it makes must pass the unit's SystemCallFilter= (as
// systemd expands its groups), and every socket its
// RestrictAddressFamilies=. A call outside them would get EPERM
// (SystemCallErrorNumber=) under systemd.
func TestSystemdSyscallFilter(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "apt-get install systemd")
	strace := needTool(t, "strace", "apt-get install strace")
	u := parseUnit(t, repoPath(unitFile))
	groups := syscallGroups(t, analyze)
	allowed := map[string]bool{}
	for _, f := range u["Service"]["SystemCallFilter"] {
		if deny, ok := strings.CutPrefix(f, "~"); ok {
			denied := map[string]bool{}
			expandSyscalls(groups, strings.Fields(deny), denied)
			for n := range denied {
				delete(allowed, n)
			}
		} else {
			expandSyscalls(groups, strings.Fields(f), allowed)
		}
	}
	if len(allowed) == 0 {
		t.Fatal("the unit has no SystemCallFilter")
	}
	families := strings.Fields(u.one(t, "RestrictAddressFamilies"))

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfg, setKeys(t, mustRead(t, repoPath("deploy/systemd/sluice.yaml")), map[string]string{"listen": addr}), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	flags := runFlags(t, strings.Fields(u.one(t, "ExecStart")))
	trace := filepath.Join(dir, "strace.txt")
	argv := []string{strace, "-f", "-qq", "-o", trace, releaseBin, "run", "-c", cfg, "--data-dir", dataDir}
	if flags.config == "" {
		t.Fatal("no -c")
	}
	d := startDaemon(t, argv, nil, addr, traceeOf)
	records := []string{`{"n":1}`, `{"n":2}`, `{"n":3}`}
	putRecords(t, addr, "events", records...)
	scrape(t, addr)
	time.Sleep(2500 * time.Millisecond) // one readiness probe round (every 2 s)
	if err := d.stop(30 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.log.String())
	}
	// The drain delivered what was buffered (interval 60 s: only SIGTERM
	// could have).
	delivered := 0
	_ = filepath.WalkDir(filepath.Join(dataDir, "events"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			delivered += strings.Count(string(mustRead(t, p)), "\n")
		}
		return nil
	})
	if delivered != len(records) {
		t.Fatalf("%d records delivered at SIGTERM, want %d\n%s", delivered, len(records), d.log.String())
	}

	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	call := regexp.MustCompile(`^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)`)
	socket := regexp.MustCompile(`^\d+\s+socket\((AF_[A-Z0-9]+)`)
	used, outside := map[string]int{}, map[string]int{}
	var badFamilies []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := call.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		used[m[1]]++
		if !allowed[m[1]] {
			outside[m[1]]++
		}
		if s := socket.FindStringSubmatch(sc.Text()); s != nil && !slices.Contains(families, s[1]) {
			badFamilies = append(badFamilies, s[1])
		}
	}
	if len(used) < 20 {
		t.Fatalf("only %d distinct system calls traced: the trace is not the daemon's", len(used))
	}
	// execve of the daemon itself is strace's, before systemd's filter
	// would apply (systemd installs it just before exec and allows it).
	delete(outside, "execve")
	if len(outside) > 0 {
		t.Errorf("system calls outside SystemCallFilter=%v (calls): %v", u["Service"]["SystemCallFilter"], outside)
	}
	if len(badFamilies) > 0 {
		t.Errorf("sockets outside RestrictAddressFamilies=%v: %v", families, badFamilies)
	}
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	slices.Sort(names)
	t.Logf("%d system calls, all allowed: %s", len(names), strings.Join(names, " "))
}

// traceeOf finds the daemon strace started: its one child.
func traceeOf(cmd *exec.Cmd) (int, error) {
	p := cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p))
	if err != nil {
		return 0, err
	}
	kids := strings.Fields(string(b))
	if len(kids) != 1 {
		return 0, fmt.Errorf("strace (pid %d) has children %v, want one", p, kids)
	}
	return strconv.Atoi(kids[0])
}

// TestSystemdReloadSignal: `systemctl reload` is the unit's ExecReload,
// SIGHUP. The daemon must survive it (Go's default for SIGHUP is to exit)
// and count a successful reload.
func TestSystemdReloadSignal(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfg, setKeys(t, mustRead(t, repoPath("deploy/systemd/sluice.yaml")), map[string]string{"listen": addr}), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, []string{releaseBin, "run", "-c", cfg, "--data-dir", filepath.Join(dir, "data")}, nil, addr, nil)
	d.signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if !d.running() {
			t.Fatalf("sluice exited on SIGHUP (systemctl reload): %v\n%s", d.err, d.log.String())
		}
		if v, ok := sampleValue(scrape(t, addr), `sluice_config_reloads_total{result="success"}`); ok && v == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful reload counted 10 s after SIGHUP:\n%s", d.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("API gone after the reload: %v", err)
	}
	if err := d.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}
