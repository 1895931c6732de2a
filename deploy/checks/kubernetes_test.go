package checks_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/config"
)

// The parts of the Kubernetes objects the test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int           `yaml:"terminationGracePeriodSeconds"`
	InitContainers                []k8sContainer `yaml:"initContainers"`
	Containers                    []k8sContainer `yaml:"containers"`
	Volumes                       []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string `yaml:"name"`
			Items []struct {
				Key  string `yaml:"key"`
				Path string `yaml:"path"`
			} `yaml:"items"`
		} `yaml:"configMap"`
		EmptyDir *struct {
			Medium    string `yaml:"medium"`
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	} `yaml:"volumes"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name          string   `yaml:"name"`
	Image         string   `yaml:"image"`
	Command       []string `yaml:"command"`
	Args          []string `yaml:"args"`
	RestartPolicy string   `yaml:"restartPolicy"`
	Env           []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Limits map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		RunAsUser                *int  `yaml:"runAsUser"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             *struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

// quantity parses a Kubernetes quantity with a binary or decimal suffix.
func quantity(t *testing.T, q string) int64 {
	t.Helper()
	m := regexp.MustCompile(`^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$`).FindStringSubmatch(q)
	if m == nil {
		t.Fatalf("quantity %q: not understood", q)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	mult := map[string]int64{"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
	return n * mult[m[2]]
}

// TestKubernetesSidecar reads deploy/kubernetes/sidecar.yaml (a ConfigMap
// and a Deployment) and checks the Sluice container against its own
// configuration, loaded by the real loader with the container's
// environment and validated by `sluice validate`: the configuration file
// is where the ConfigMap is mounted; the data directory is a volume; the
// probes reach the ops listener (admin_listen, else listen) on a
// non-loopback address, /readyz and /healthz; the application's endpoint
// is the API's port on loopback; the grace period covers preStop and
// shutdown_timeout; the buffers fit in the emptyDir's sizeLimit and
// memory_limit under the container's; it runs non-root on a read-only
// root with the Containerfile's binary.
func TestKubernetesSidecar(t *testing.T) {
	dec := yaml.NewDecoder(bytes.NewReader(mustRead(t, repoPath("deploy/kubernetes/sidecar.yaml"))))
	configMaps := map[string]map[string]string{}
	var pods []k8sObject
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch o.Kind {
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		case "Deployment", "StatefulSet", "DaemonSet":
			pods = append(pods, o)
		}
	}
	if len(pods) != 1 {
		t.Fatalf("%d workloads in the manifest, want 1", len(pods))
	}
	pod := pods[0].Spec.Template.Spec

	var sluice *k8sContainer
	native := false
	for i, c := range pod.InitContainers {
		if c.Name == "sluice" {
			sluice, native = &pod.InitContainers[i], true
		}
	}
	for i, c := range pod.Containers {
		if c.Name == "sluice" {
			sluice = &pod.Containers[i]
		}
	}
	if sluice == nil {
		t.Fatal("no container named sluice")
	}
	if native && sluice.RestartPolicy != "Always" {
		t.Fatalf("sluice is an init container with restartPolicy %q: without Always it must exit before the application starts, and it never does", sluice.RestartPolicy)
	}
	if len(sluice.Args) > 0 {
		t.Fatal("sluice: args without command would be appended to the image's ENTRYPOINT")
	}
	cf := parseContainerfile(t, repoPath("deploy/container/Containerfile"))
	if entry := instructionOf(t, cf.stages[len(cf.stages)-1], "ENTRYPOINT"); sluice.Command[0] != entry.args[0] {
		t.Fatalf("command %s: the image's binary is %s", sluice.Command[0], entry.args[0])
	}
	flags := runFlags(t, sluice.Command)

	volumes := map[string]int{}
	for i, v := range pod.Volumes {
		volumes[v.Name] = i
	}
	mountOf := func(dir string) (int, bool) {
		for _, m := range sluice.VolumeMounts {
			if m.MountPath == dir && m.SubPath == "" {
				i, ok := volumes[m.Name]
				if !ok {
					t.Fatalf("volumeMount %s names no volume", m.Name)
				}
				return i, true
			}
		}
		return 0, false
	}
	// The configuration: a ConfigMap key mounted as -c.
	vi, ok := mountOf(path.Dir(flags.config))
	if !ok || pod.Volumes[vi].ConfigMap == nil {
		t.Fatalf("no ConfigMap volume is mounted at %s (the directory of -c %s)", path.Dir(flags.config), flags.config)
	}
	cm := pod.Volumes[vi].ConfigMap
	key := path.Base(flags.config)
	for _, it := range cm.Items {
		if it.Path == key {
			key = it.Key
		}
	}
	data, ok := configMaps[cm.Name][key]
	if !ok {
		t.Fatalf("ConfigMap %s (in this file) has no key %s for %s", cm.Name, key, flags.config)
	}
	// The data directory: a volume, never the container's root.
	vi, ok = mountOf(flags.dataDir)
	if !ok || (pod.Volumes[vi].EmptyDir == nil && pod.Volumes[vi].PersistentVolumeClaim == nil) {
		t.Fatalf("--data-dir %s is not an emptyDir or persistentVolumeClaim mount: the root file system is read-only and the buffers must outlive the container", flags.dataDir)
	}
	dataVol := pod.Volumes[vi]

	// The configuration through the loader, with the container's
	// environment (secrets stand in as placeholders).
	env := map[string]string{}
	var envList []string
	for _, e := range sluice.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = "from-secret"
		}
		env[e.Name] = v
		envList = append(envList, e.Name+"="+v)
	}
	cfg, err := config.Parse("sidecar.yaml:"+cm.Name, []byte(data), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("the ConfigMap's %s: %v", key, err)
	}
	file := filepath.Join(t.TempDir(), key)
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	validate := exec.Command(releaseBin, "validate", "-c", file, "--data-dir", t.TempDir())
	validate.Env = append(os.Environ(), envList...)
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("sluice validate the ConfigMap's %s: %v\n%s", key, err, out)
	}

	// Probes and ports.
	ops := cfg.Listen
	if cfg.AdminListen != "" {
		ops = cfg.AdminListen
	}
	opsHost, opsPort := splitHostPort(t, ops)
	if ip := net.ParseIP(opsHost); opsHost == "localhost" || (ip != nil && ip.IsLoopback()) {
		t.Fatalf("the ops listener %s is loopback: the kubelet probes the pod's IP", ops)
	}
	port := func(p any) int {
		switch v := p.(type) {
		case int:
			return v
		case string:
			for _, cp := range sluice.Ports {
				if cp.Name == v {
					return cp.ContainerPort
				}
			}
			t.Fatalf("probe port %q is no named containerPort", v)
		}
		t.Fatalf("probe port %v: not a number or a name", p)
		return 0
	}
	checkProbe := func(what string, p *k8sProbe, wantPath string) {
		if p == nil || p.HTTPGet == nil {
			t.Fatalf("%s: no httpGet probe", what)
		}
		if p.HTTPGet.Path != wantPath || port(p.HTTPGet.Port) != opsPort {
			t.Fatalf("%s: GET %s on port %d, want %s on %d (%s)", what, p.HTTPGet.Path, port(p.HTTPGet.Port), wantPath, opsPort, ops)
		}
	}
	checkProbe("readinessProbe", sluice.ReadinessProbe, "/readyz")
	checkProbe("livenessProbe", sluice.LivenessProbe, "/healthz")
	if sluice.StartupProbe != nil {
		checkProbe("startupProbe", sluice.StartupProbe, "/healthz")
	}
	if p := pods[0].Spec.Template.Metadata.Annotations["prometheus.io/port"]; p != "" && p != strconv.Itoa(opsPort) {
		t.Fatalf("prometheus.io/port %s: /metrics is on %d", p, opsPort)
	}

	// The application reaches the API on loopback.
	_, apiPort := splitHostPort(t, cfg.Listen)
	found := false
	for _, c := range pod.Containers {
		for _, e := range c.Env {
			if !strings.HasPrefix(e.Value, "http://") && !strings.HasPrefix(e.Value, "https://") {
				continue
			}
			u, err := url.Parse(e.Value)
			if err != nil {
				t.Fatal(err)
			}
			found = true
			if p, _ := strconv.Atoi(u.Port()); p != apiPort || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") {
				t.Fatalf("container %s: %s=%s, but the API listens on %s", c.Name, e.Name, e.Value, cfg.Listen)
			}
		}
	}
	if !found {
		t.Fatal("no application container is given the API's endpoint")
	}

	// Termination: preStop, then SIGTERM and a drain of shutdown_timeout.
	if sluice.Lifecycle == nil || sluice.Lifecycle.PreStop == nil || sluice.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("sluice: no preStop sleep (the image has no shell to run one)")
	}
	preStop := time.Duration(sluice.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds (the default, 30 s, is no longer than the default shutdown_timeout)")
	}
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	if grace <= preStop+cfg.ShutdownTimeout {
		t.Fatalf("terminationGracePeriodSeconds %v does not exceed preStop %v + shutdown_timeout %v", grace, preStop, cfg.ShutdownTimeout)
	}

	// Disk and memory.
	if ed := dataVol.EmptyDir; ed != nil {
		if ed.Medium == "Memory" {
			t.Fatal("the data directory is in memory: the buffers would not survive a container restart's node pressure, and count against memory")
		}
		if ed.SizeLimit == "" {
			t.Fatal("the emptyDir has no sizeLimit: the buffers could fill the node's disk")
		}
		var total int64
		for _, s := range cfg.Streams {
			if s.Buffer.Type == config.BufferDisk {
				total += int64(s.Buffer.MaxBytes) + int64(s.Buffer.SegmentBytes) // a segment's slack
			}
		}
		if limit := quantity(t, ed.SizeLimit); total >= limit {
			t.Fatalf("the streams' buffers take up to %d bytes, the emptyDir's sizeLimit is %s: the kubelet evicts the pod before Sluice throttles", total, ed.SizeLimit)
		}
	}
	if lim := sluice.Resources.Limits["memory"]; lim != "" && cfg.MemoryLimit > 0 && int64(cfg.MemoryLimit) >= quantity(t, lim) {
		t.Fatalf("memory_limit %v is not below the container's memory limit %s", cfg.MemoryLimit, lim)
	}

	// The container's security context.
	sc := sluice.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("sluice: no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Fatal("sluice: want runAsNonRoot and a non-zero runAsUser")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Fatal("sluice: want readOnlyRootFilesystem (it writes only to the data directory)")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Fatal("sluice: want allowPrivilegeEscalation: false")
	case sc.Capabilities == nil || fmt.Sprint(sc.Capabilities.Drop) != "[ALL]":
		t.Fatal("sluice: want capabilities drop [ALL]")
	}
}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}
