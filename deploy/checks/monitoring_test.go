package checks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskinesis "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/deploy/testpeers"
)

const (
	dashboardFile = "deploy/grafana/sluice-dashboard.json"
	rulesFile     = "deploy/prometheus/sluice-alerts.yml"
	rulesTestFile = "deploy/prometheus/sluice-alerts.test.yml"
)

// Series Prometheus makes itself for every scrape target, which no
// exporter serves: the rules may use them.
var prometheusSynthesized = map[string]bool{"up": true}

// query is one PromQL expression of the dashboard or the rules, and where.
type query struct{ where, expr string }

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// loadRules decodes the rules strictly: an unknown key (a misspelt
// "annotation:") is an error, as it is to Prometheus.
func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(mustRead(t, repoPath(rulesFile))))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return rf
}

func ruleQueries(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{fmt.Sprintf("%s: %s", rulesFile, r.Alert+r.Record), r.Expr})
		}
	}
	return qs
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(mustRead(t, repoPath(dashboardFile))))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// dashboardQueries returns every panel target's expression and, as
// template queries, the variables' queries.
func dashboardQueries(t *testing.T) (panels, templates []query) {
	t.Helper()
	d := loadDashboard(t)
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				panels = append(panels, query{fmt.Sprintf("%s: panel %q (%s)", dashboardFile, p.Title, tg.RefID), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("variable %s: query %s", v.Name, v.Query)
			}
		}
		templates = append(templates, query{fmt.Sprintf("%s: variable %s", dashboardFile, v.Name), q.Query})
	}
	return panels, templates
}

// referencedMetrics maps every metric name the dashboard and the rules use
// to where.
func referencedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	refs := map[string][]string{}
	add := func(q query, names []string, err error) {
		if err != nil {
			t.Fatalf("%s: %v", q.where, err)
		}
		if len(names) == 0 {
			t.Fatalf("%s: %q names no metric", q.where, q.expr)
		}
		for _, n := range names {
			refs[n] = append(refs[n], q.where)
		}
	}
	panels, templates := dashboardQueries(t)
	for _, q := range append(panels, ruleQueries(t)...) {
		names, err := metricNames(q.expr)
		add(q, names, err)
	}
	for _, q := range templates {
		names, err := templateQueryNames(q.expr)
		add(q, names, err)
	}
	return refs
}

// TestAlertRulesStructure checks what Prometheus and Alertmanager routing
// rely on: a unique alert name, an expression, a for: duration, a
// severity, a summary and a description; and that the rule unit tests
// make every alert fire at least once.
func TestAlertRulesStructure(t *testing.T) {
	rf := loadRules(t)
	duration := regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Fatalf("a group without a name or rules: %q", g.Name)
		}
		for _, r := range g.Rules {
			switch {
			case r.Alert == "" || r.Record != "":
				t.Errorf("group %s: %q is not an alerting rule", g.Name, r.Alert+r.Record)
			case seen[r.Alert]:
				t.Errorf("alert %s defined twice", r.Alert)
			case strings.TrimSpace(r.Expr) == "":
				t.Errorf("alert %s: no expr", r.Alert)
			case !duration.MatchString(r.For):
				t.Errorf("alert %s: for: %q, want a duration (a blip must not page)", r.Alert, r.For)
			case !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]):
				t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			case strings.TrimSpace(r.Annotations["summary"]) == "" || strings.TrimSpace(r.Annotations["description"]) == "":
				t.Errorf("alert %s: want summary and description annotations", r.Alert)
			}
			seen[r.Alert] = true
		}
	}
	if len(seen) == 0 {
		t.Fatal("no alerting rules")
	}
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				AlertName string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(mustRead(t, repoPath(rulesTestFile)), &tests); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tests.RuleFiles, filepath.Base(rulesFile)) {
		t.Fatalf("%s does not test %s", rulesTestFile, rulesFile)
	}
	fires := map[string]bool{}
	for _, c := range tests.Tests {
		for _, a := range c.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.AlertName] = true
			}
		}
	}
	for name := range seen {
		if !fires[name] {
			t.Errorf("alert %s: no case of %s expects it to fire", name, rulesTestFile)
		}
	}
}

// TestAlertRulesPromtool runs Prometheus's own checker on the rules and
// their unit tests: the expressions and templates parse, and each alert
// fires (and stays quiet) when and as its tests say.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := needTool(t, "promtool", "deploy/install-test-deps.sh installs Debian's")
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		// From the rules' folder: the test file names them relatively.
		args[2] = filepath.Base(args[2])
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(repoPath(rulesFile))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestDashboardStructure checks the dashboard loads as Grafana expects
// (unique panel ids, 24 columns, every panel querying the dashboard's
// Prometheus variable) and that every panel expression parses as PromQL:
// promtool checks them as recording rules, Grafana's variables replaced.
func TestDashboardStructure(t *testing.T) {
	promtool := needTool(t, "promtool", "deploy/install-test-deps.sh installs Debian's")
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Fatal("the dashboard needs a title and a uid (its URL)")
	}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("panel %q: id %d is zero or not unique", p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
				t.Errorf("panel %q: gridPos %+v outside 24 columns", p.Title, p.GridPos)
			}
			if p.Type != "row" {
				if p.Title == "" || len(p.Targets) == 0 {
					t.Errorf("panel %d %q: no title or no query", p.ID, p.Title)
				}
				for _, ds := range append([]json.RawMessage{p.Datasource}, targetsDS(p)...) {
					if !strings.Contains(string(ds), `"${datasource}"`) {
						t.Errorf("panel %q: datasource %s, want the ${datasource} variable", p.Title, ds)
					}
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)

	panels, templates := dashboardQueries(t)
	vars := regexp.MustCompile(`\$\{?(\w+)\}?`)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	exprs := map[string]string{}
	for i, q := range panels {
		if strings.TrimSpace(q.expr) == "" {
			t.Fatalf("%s: empty expression", q.where)
		}
		e := vars.ReplaceAllStringFunc(q.expr, func(v string) string {
			switch vars.FindStringSubmatch(v)[1] {
			case "__rate_interval", "__interval":
				return "5m"
			case "__range":
				return "1h"
			}
			return ".*"
		})
		name := fmt.Sprintf("dashboard:q%d", i)
		exprs[name] = q.where
		b, _ := json.Marshal(e) // a JSON string is a YAML string
		fmt.Fprintf(&rules, "      - record: %s\n        expr: %s\n", name, b)
	}
	for _, q := range templates {
		if _, err := templateQueryNames(q.expr); err != nil {
			t.Errorf("%s: %v", q.where, err)
		}
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		msg := string(out)
		for name, where := range exprs {
			msg = strings.ReplaceAll(msg, `"`+name+`"`, where)
		}
		t.Fatalf("dashboard expressions that are not PromQL: %v\n%s", err, msg)
	}
}

func targetsDS(p panel) []json.RawMessage {
	var ds []json.RawMessage
	for _, tg := range p.Targets {
		ds = append(ds, tg.Datasource)
	}
	return ds
}

// TestMonitoringCoversOperations: the dashboard shows, and the rules alert
// on, what deploy/README.md says they do.
func TestMonitoringCoversOperations(t *testing.T) {
	in := func(qs []query) map[string]bool {
		set := map[string]bool{}
		for _, q := range qs {
			names, err := metricNames(q.expr)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				set[n] = true
			}
		}
		return set
	}
	panels, _ := dashboardQueries(t)
	for what, set := range map[string]struct {
		have map[string]bool
		want []string
	}{
		dashboardFile: {in(panels), []string{
			"sluice_incoming_records_total", "sluice_incoming_bytes_total", "sluice_delivery_records_total",
			"sluice_delivery_bytes_total", "sluice_buffer_backlog_bytes", "sluice_delivery_data_freshness_seconds",
			"sluice_delivery_in_flight_batches", "sluice_delivery_retries_total", "sluice_dead_letter_records_total",
			"sluice_stream_ready", "sluice_api_request_duration_seconds_bucket", "sluice_buffer_fsync_duration_seconds_bucket",
			"sluice_kinesis_millis_behind_latest", "sluice_config_reloads_total", "sluice_config_last_reload_successful",
		}},
		rulesFile: {in(ruleQueries(t)), []string{
			"sluice_delivery_data_freshness_seconds", "sluice_buffer_backlog_bytes", "sluice_dead_letter_records_total",
			"sluice_stream_ready", "sluice_config_last_reload_successful", "sluice_buffer_healthy",
		}},
	} {
		for _, n := range set.want {
			if !set.have[n] {
				t.Errorf("%s does not use %s", what, n)
			}
		}
	}
}

// TestMonitoringMetricsExist starts the daemon with a stream that takes
// puts (through a metadata_extraction processor, so that a record that is
// not JSON is dead-lettered) and a stream reading a Kinesis stream
// (kinesalite), puts records, reloads the configuration (SIGHUP), and
// requires every metric the dashboard and the rules name to be in
// /metrics (histograms as their _bucket, _sum, _count samples). Labelled
// series appear at first use, hence the traffic; the wait is bounded.
func TestMonitoringMetricsExist(t *testing.T) {
	refs := referencedMetrics(t)
	if len(refs) < 10 {
		t.Fatalf("only %d metrics referenced: the extraction is broken", len(refs))
	}

	k := testpeers.StartKinesalite(t)
	kc := awskinesis.New(awskinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(k.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("any", "any", "")})
	ctx := context.Background()
	if _, err := kc.CreateStream(ctx, &awskinesis.CreateStreamInput{StreamName: aws.String("clicks"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		out, err := kc.DescribeStreamSummary(ctx, &awskinesis.DescribeStreamSummaryInput{StreamName: aws.String("clicks")})
		if err != nil {
			t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			break
		}
		if i == 500 {
			t.Fatal("kinesis stream not active")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := kc.PutRecord(ctx, &awskinesis.PutRecordInput{StreamName: aws.String("clicks"), PartitionKey: aws.String("k"), Data: []byte(`{"click":1}`)}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `listen: %s
shutdown_timeout: 5s
streams:
  events:
    buffering: {size: 1, interval: 0}
    processors:
      - type: metadata_extraction
        query: '{kind: .kind}'
    destination:
      type: file
      path: events
      prefix: "kind=!{partitionKeyFromQuery:kind}/"
      error_output_prefix: "errors/!{firehose:error-output-type}/"
      append_newline: true
  clicks:
    type: KinesisStreamAsSource
    source:
      type: kinesis
      stream: clicks
      endpoint: %s
      region: us-east-1
      starting_position: TRIM_HORIZON
    buffering: {size: 1, interval: 0}
    destination: {type: file, path: clicks, append_newline: true}
`, addr, k.Endpoint), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"AWS_ACCESS_KEY_ID=any", "AWS_SECRET_ACCESS_KEY=any", "AWS_REGION=us-east-1"}
	d := startDaemon(t, []string{releaseBin, "run", "-c", cfg, "--data-dir", filepath.Join(dir, "data")}, env, addr, nil)
	putRecords(t, addr, "events", `{"kind":"a"}`, `{"kind":"b"}`, `not json: dead-lettered`)
	d.signal(syscall.SIGHUP)

	var missing []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		have := sampleNames(scrape(t, addr))
		missing = missing[:0]
		for n := range refs {
			if !have[n] && !prometheusSynthesized[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) || !d.running() {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		var b strings.Builder
		for _, n := range missing {
			fmt.Fprintf(&b, "  %s, used by %s\n", n, strings.Join(slices.Compact(refs[n]), "; "))
		}
		t.Fatalf("%d metrics the dashboard or the rules use are not in /metrics after 20 s:\n%s\ndaemon log:\n%s", len(missing), b.String(), d.log.String())
	}
	names := make([]string, 0, len(refs))
	for n := range refs {
		if !prometheusSynthesized[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	t.Logf("%d metrics referenced, all exported: %s", len(names), strings.Join(names, " "))
	if err := d.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
}
