package jq

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pipeline"
)

// record1KiB returns a JSON record of about 1 KiB shaped like an event: a
// few top-level fields, a nested object, an array and a long message.
func record1KiB(i int) []byte {
	msg := strings.Repeat("lorem ipsum dolor sit amet ", 26)
	s := fmt.Sprintf(`{"customer_id":"c%04d","event_timestamp":%d,"type":{"device":"mobile","event":"user_clicked_submit_button","version":3},`+
		`"region":"eu-west-1","session":{"id":"%08x","started":1565380000,"pages":[1,2,3,4,5,6,7,8]},"amount":%d.25,"ok":true,`+
		`"tags":["a","b","c","d"],"headers":{"user-agent":"Mozilla/5.0 (X11; Linux x86_64)","accept":"application/json","x-request-id":"%016x"},`+
		`"message":%q}`, i%1000, 1565382027+i, i, i%500, i, msg)
	return []byte(s)
}

func benchmarkQuery(b *testing.B, query string, whole bool) {
	p := newProc(b, query)
	if whole {
		p.c.fields = nil
	}
	const n = 1000
	batch := pipeline.Batch{Stream: "bench"}
	for i := range n {
		d := record1KiB(i)
		batch.Records = append(batch.Records, pipeline.Record{Data: d})
		batch.Bytes += len(d)
	}
	b.SetBytes(int64(batch.Bytes))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range batch.Records {
			batch.Records[i].Keys = nil
		}
		_, failed, err := p.Process(context.Background(), batch)
		if err != nil || len(failed) != 0 {
			b.Fatalf("err=%v failed=%v", err, failed)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkProcess1KiB measures the Firehose documentation's query on
// 1 KiB JSON records, 1,000 per batch, with the projection (the default
// for such a query) and with records decoded whole.
func BenchmarkProcess1KiB(b *testing.B) {
	const doc = `{customer_id: .customer_id, device: .type.device, year: .event_timestamp | strftime("%Y"), month: .event_timestamp | strftime("%m"), day: .event_timestamp | strftime("%d"), hour: .event_timestamp | strftime("%H")}`
	b.Run("doc-query", func(b *testing.B) { benchmarkQuery(b, doc, false) })
	b.Run("doc-query-whole-decode", func(b *testing.B) { benchmarkQuery(b, doc, true) })
	b.Run("one-key", func(b *testing.B) { benchmarkQuery(b, `{customer_id: .customer_id}`, false) })
}
