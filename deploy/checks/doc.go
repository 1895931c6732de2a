// Package checks tests the deployment files under deploy/ against the real
// daemon: the systemd unit (systemd-analyze verify and security, the
// system calls the daemon makes against its filter, its flags and
// timeouts against the configuration), the container build file (its
// build steps run without a container engine give the static binary that
// `make release` gives, byte for byte), the Kubernetes sidecar (its
// configuration through the loader, probes, mounts and grace period
// against it), and the Grafana dashboard and Prometheus rules (every metric
// they name is exported by a running daemon; promtool checks and unit-tests
// the rules). It has no code of its own: everything is in its tests.
package checks
