package prefix

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/pipeline"
)

const custKey = "partitionKeyFromQuery:customer_id"

func keyedBatch(n, distinct int) pipeline.Batch {
	b := pipeline.Batch{Stream: "s", ID: pipeline.BatchID{First: 100, End: 900}}
	for i := range n {
		b.Records = append(b.Records, pipeline.Record{
			ID:      fmt.Sprintf("r%d", i),
			Data:    []byte(fmt.Sprintf("%d", i)),
			Arrived: arrival.Add(time.Duration(i) * time.Millisecond),
			Keys:    map[string]string{custKey: fmt.Sprintf("c%d", i%distinct)},
		})
	}
	return b
}

func dpSpec(t *testing.T) *Spec {
	return mustParse(t, "customer_id=!{partitionKeyFromQuery:customer_id}/!{timestamp:yyyy/MM/dd/HH}/", "errors/!{firehose:error-output-type}/", Options{DynamicPartitioning: true, FileExtension: ".gz"})
}

func TestSplitManyPartitions(t *testing.T) {
	s := dpSpec(t)
	b := keyedBatch(10000, 1000)
	parts, failed := s.Split(b, 1000)
	if len(failed) != 0 {
		t.Fatalf("%d failures, first %v", len(failed), failed[0].Err)
	}
	if len(parts) != 1000 {
		t.Fatalf("%d partitions, want 1000", len(parts))
	}
	total := 0
	keys := map[string]bool{}
	for pi, p := range parts {
		want := fmt.Sprintf("c%d", pi) // order of first appearance
		if p.Keys[custKey] != want {
			t.Fatalf("partition %d has key %q, want %q", pi, p.Keys[custKey], want)
		}
		if p.Prefix != "customer_id="+want+"/2019/10/01/09/" {
			t.Errorf("partition %d prefix %q", pi, p.Prefix)
		}
		if !strings.HasPrefix(p.Key, p.Prefix+"s-1-2019-10-01-09-20-18-") || !strings.HasSuffix(p.Key, ".gz") {
			t.Errorf("partition %d key %q", pi, p.Key)
		}
		if keys[p.Key] {
			t.Errorf("object key %q used twice", p.Key)
		}
		keys[p.Key] = true
		if len(p.Records) != 10 {
			t.Errorf("partition %d has %d records", pi, len(p.Records))
		}
		for j, ri := range p.Records {
			if b.Records[ri].Keys[custKey] != want {
				t.Fatalf("partition %s holds record %d of key %s", want, ri, b.Records[ri].Keys[custKey])
			}
			if j > 0 && ri <= p.Records[j-1] {
				t.Errorf("partition %s: record order not preserved: %v", want, p.Records)
			}
		}
		if !p.Oldest.Equal(b.Records[p.Records[0]].Arrived) {
			t.Errorf("partition %d oldest %v", pi, p.Oldest)
		}
		total += len(p.Records)
	}
	if total != len(b.Records) {
		t.Errorf("%d records in partitions, want %d", total, len(b.Records))
	}
	// Redelivery of the same batch gives the same keys; another batch
	// identity gives others.
	again, _ := s.Split(b, 1000)
	if !reflect.DeepEqual(again, parts) {
		t.Error("Split is not deterministic")
	}
	b2 := b
	b2.ID.End++
	other, _ := s.Split(b2, 1000)
	if other[0].Key == parts[0].Key {
		t.Error("two batch identities share an object key")
	}
}

func TestSplitOldestIsPerPartition(t *testing.T) {
	s := mustParse(t, "!{partitionKeyFromLambda:k}/!{timestamp:HH-mm-ss}/", "e/!{firehose:error-output-type}/", Options{DynamicPartitioning: true})
	rec := func(k string, sec int) pipeline.Record {
		return pipeline.Record{Arrived: arrival.Add(time.Duration(sec) * time.Second), Keys: map[string]string{"partitionKeyFromLambda:k": k}}
	}
	b := pipeline.Batch{Stream: "s", Records: []pipeline.Record{rec("a", 5), rec("b", 9), rec("a", 2), rec("b", 7)}}
	parts, failed := s.Split(b, 0)
	if len(failed) != 0 || len(parts) != 2 {
		t.Fatalf("parts %d failed %v", len(parts), failed)
	}
	if parts[0].Prefix != "a/09-20-20/" || parts[1].Prefix != "b/09-20-25/" {
		t.Errorf("prefixes %q %q", parts[0].Prefix, parts[1].Prefix)
	}
	if !strings.Contains(parts[1].Key, "-2019-10-01-09-20-25-") {
		t.Errorf("object name time of b: %q", parts[1].Key)
	}
}

func TestSplitActivePartitionLimit(t *testing.T) {
	s := dpSpec(t)
	b := keyedBatch(100, 10) // keys c0..c9, first appearances in order
	var runs [][]pipeline.RecordError
	for range 2 {
		parts, failed := s.Split(b, 3)
		if len(parts) != 3 {
			t.Fatalf("%d partitions, want 3", len(parts))
		}
		for i, p := range parts {
			if p.Keys[custKey] != fmt.Sprintf("c%d", i) || len(p.Records) != 10 {
				t.Errorf("partition %d: key %s, %d records", i, p.Keys[custKey], len(p.Records))
			}
		}
		if len(failed) != 70 {
			t.Fatalf("%d failed, want 70", len(failed))
		}
		for j, f := range failed {
			if k := b.Records[f.Index].Keys[custKey]; k == "c0" || k == "c1" || k == "c2" {
				t.Errorf("record %d of kept partition %s failed", f.Index, k)
			}
			if j > 0 && f.Index <= failed[j-1].Index {
				t.Error("failures not in record order")
			}
			var ce *pipeline.CodedError
			if !errors.As(f.Err, &ce) || ce.Code != CodeActivePartitionsLimitExceeded || ce.OutputType != OutputActivePartitionExceeded {
				t.Fatalf("failure %v", f.Err)
			}
			if !errors.Is(f.Err, ErrActivePartitionsExceeded) || pipeline.IsRetryable(f.Err) {
				t.Errorf("failure %v: want permanent ErrActivePartitionsExceeded", f.Err)
			}
		}
		runs = append(runs, failed)
	}
	if !reflect.DeepEqual(runs[0], runs[1]) {
		t.Error("limit enforcement is not deterministic")
	}
	// 0 means Firehose's default of 500.
	if parts, failed := s.Split(keyedBatch(600, 600), 0); len(parts) != 500 || len(failed) != 100 {
		t.Errorf("default limit: %d partitions, %d failed", len(parts), len(failed))
	}
}

func TestSplitFailures(t *testing.T) {
	s := mustParse(t, "k=!{partitionKeyFromQuery:k}/!{partitionKeyFromLambda:l}/", "e/!{firehose:error-output-type}/", Options{DynamicPartitioning: true})
	keys := func(k, l string) map[string]string {
		m := map[string]string{}
		if k != "-" {
			m["partitionKeyFromQuery:k"] = k
		}
		if l != "-" {
			m["partitionKeyFromLambda:l"] = l
		}
		return m
	}
	b := pipeline.Batch{Stream: "s", Records: []pipeline.Record{
		{ID: "0", Arrived: arrival, Keys: keys("a", "x")},
		{ID: "1", Arrived: arrival, Keys: keys("-", "x")},
		{ID: "2", Arrived: arrival, Keys: keys(strings.Repeat("v", 600), "x")},
		{ID: "3", Arrived: arrival, Keys: keys("a", "-")},
		{ID: "4", Arrived: arrival}, // no keys at all
		{ID: "5", Arrived: arrival, Keys: keys("a", "x")},
	}}
	parts, failed := s.Split(b, 0)
	if len(parts) != 1 || !reflect.DeepEqual(parts[0].Records, []int{0, 5}) || parts[0].Prefix != "k=a/x/2019/10/01/09/" {
		t.Fatalf("parts %+v", parts)
	}
	want := []struct {
		index int
		code  string
		is    error
		text  string
	}{
		{1, CodeMetadataExtractionFailed, ErrMissingKey, "!{partitionKeyFromQuery:k}"},
		{2, CodePrefixEvaluationFailed, ErrPrefixTooLong, "512"},
		{3, CodeMetadataExtractionFailed, ErrMissingKey, "!{partitionKeyFromLambda:l}"},
		{4, CodeMetadataExtractionFailed, ErrMissingKey, "!{partitionKeyFromQuery:k}"},
	}
	if len(failed) != len(want) {
		t.Fatalf("failed %v", failed)
	}
	for i, w := range want {
		f := failed[i]
		var ce *pipeline.CodedError
		if f.Index != w.index || !errors.As(f.Err, &ce) || ce.Code != w.code || ce.OutputType != OutputPartitioningFailed ||
			!errors.Is(f.Err, w.is) || !strings.Contains(f.Err.Error(), w.text) {
			t.Errorf("failure %d = record %d: %v; want record %d, %s, %v, containing %q", i, f.Index, f.Err, w.index, w.code, w.is, w.text)
		}
	}
}

func TestSplitWithoutKeys(t *testing.T) {
	s := mustParse(t, "logs/", "", Options{})
	b := keyedBatch(5, 5)
	b.Records[3].Arrived = arrival.Add(-time.Hour)
	parts, failed := s.Split(b, 1) // the limit does not apply without keys
	if len(failed) != 0 || len(parts) != 1 {
		t.Fatalf("parts %d, failed %v", len(parts), failed)
	}
	p := parts[0]
	if p.ID != "" || p.Keys != nil || !reflect.DeepEqual(p.Records, []int{0, 1, 2, 3, 4}) || p.Prefix != "logs/2019/10/01/08/" {
		t.Errorf("partition %+v", p)
	}
	if want := "logs/2019/10/01/08/s-1-2019-10-01-08-20-18-" + ObjectUUID(ObjectSeed("s", "data", b.ID, "")); p.Key != want {
		t.Errorf("key %q, want %q", p.Key, want)
	}
	if parts, failed := s.Split(pipeline.Batch{}, 0); parts != nil || failed != nil {
		t.Error("empty batch produced output")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m1 := NewMetrics(reg)
	m2 := NewMetrics(reg) // a second stream's destination on the same registry
	s := dpSpec(t)
	parts, failed := s.Split(keyedBatch(20, 5), 3)
	m1.Observe("a", parts, failed)
	parts, failed = s.Split(keyedBatch(20, 2), 3)
	m2.Observe("b", parts, failed)
	m2.Observe("a", parts, failed)
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName() + "{" + m.GetLabel()[0].GetValue() + "}"
			if g := m.GetGauge(); g != nil {
				got[name] = g.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				got[name] = c.GetValue()
			}
		}
	}
	want := map[string]float64{
		"sluice_partition_limit_exceeded_total{a}": 1,
		"sluice_partitions_active{a}":              2,
		"sluice_partitions_active{b}":              2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
	var nilMetrics *Metrics
	nilMetrics.Observe("x", nil, nil) // must not panic
	NewMetrics(nil).Observe("x", parts, failed)
}
