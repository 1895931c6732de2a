package object

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pipeline"
)

func TestGroupDeadLettersAndErrorRecords(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	dls := []pipeline.DeadLetter{
		{Record: pipeline.Record{Data: []byte("a"), Arrived: t0.Add(2 * time.Second)}, OutputType: "processing-failed", Code: "X.A", Attempts: 2},
		{Record: pipeline.Record{Data: []byte("b"), Arrived: t0.Add(time.Second)}, Code: "X.B", Message: "no <html> escaping"},
		{Record: pipeline.Record{Data: []byte("c"), Arrived: t0}, OutputType: "processing-failed", Code: "X.C"},
	}
	groups, err := groupDeadLetters(dls)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].OutputType != pipeline.OutputDeliveryFailed || groups[1].OutputType != "processing-failed" {
		t.Fatalf("groups %+v", groups)
	}
	if g := groups[1]; len(g.Indices) != 2 || g.Indices[0] != 0 || g.Indices[1] != 2 || !g.Oldest.Equal(t0) {
		t.Fatalf("processing-failed group %+v", g)
	}
	var buf bytes.Buffer
	ending := t0.Add(time.Minute)
	if err := writeErrorRecords(&buf, dls, groups[0].Indices, ending); err != nil {
		t.Fatal(err)
	}
	want := `{"attemptsMade":0,"arrivalTimestamp":1714554001000,"errorCode":"X.B","errorMessage":"no <html> escaping","attemptEndingTimestamp":1714554060000,"rawData":"Yg=="}` + "\n"
	if buf.String() != want {
		t.Fatalf("error record\n got %s\nwant %s", buf.String(), want)
	}
	var rec ErrorRecord
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || string(rec.RawData) != "Yg==" {
		t.Fatalf("round trip: %+v %v", rec, err)
	}
	if _, err := groupDeadLetters([]pipeline.DeadLetter{{OutputType: "../escape"}}); err == nil || !strings.Contains(err.Error(), "invalid error output type") {
		t.Fatalf("a path-escaping output type was accepted: %v", err)
	}
}

// TestErrorRecordFields: a dead letter's Fields appear in its error record
// before rawData (Firehose's failed-document shape), sorted, and may not
// replace a common member.
func TestErrorRecordFields(t *testing.T) {
	t0 := time.Date(2016, 2, 25, 13, 0, 0, 0, time.UTC)
	dls := []pipeline.DeadLetter{{
		Record: pipeline.Record{Data: []byte(`{"a":1}`), Arrived: t0}, Attempts: 3, Code: "400", Message: "mapper_parsing_exception",
		Fields: map[string]string{"esIndexName": "myindex-2016-02-25", "esDocumentId": "49-0", "esTypeName": ""},
	}}
	var buf bytes.Buffer
	if err := writeErrorRecords(&buf, dls, []int{0}, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	want := `{"attemptsMade":3,"arrivalTimestamp":1456405200000,"errorCode":"400","errorMessage":"mapper_parsing_exception","attemptEndingTimestamp":1456405201000,` +
		`"esDocumentId":"49-0","esIndexName":"myindex-2016-02-25","esTypeName":"","rawData":"eyJhIjoxfQ=="}` + "\n"
	if buf.String() != want {
		t.Fatalf("error record\n got %s\nwant %s", buf.String(), want)
	}
	dls[0].Fields = map[string]string{"errorCode": "sneaky"}
	if err := writeErrorRecords(&buf, dls, []int{0}, t0); err == nil {
		t.Fatal("a field replacing errorCode was written")
	}
}
