package firehoseapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The reference shapes: what encoding/json produces for the same bodies.
type refBatch struct {
	DeliveryStreamName string
	Records            []struct{ Data []byte }
}

type refPut struct {
	DeliveryStreamName string
	Record             struct{ Data []byte }
}

var decodeSeeds = []string{
	`{"DeliveryStreamName":"s","Records":[{"Data":"aGVsbG8="},{"Data":""}]}`,
	`{"DeliveryStreamName":"s","Record":{"Data":"aGVsbG8="}}`,
	` { "Records" : [ { "Data" : "AAEC" } , { "Data":"/w==" } ] , "DeliveryStreamName" : "a.b-c_d" } `,
	`{"DeliveryStreamName":"s","Records":[{"Data":"YWJj\/ZA=="}]}`,
	`{"DeliveryStreamName":"s","Records":[{"Data":"YW\nJj"}]}`,
	`{"DeliveryStreamName":"s","Records":[{"Data":"YW` + "\n" + `Jj"}]}`,
	`{"DeliveryStreamName":"s","Records":[{"Data":"\u0041\u0041=="}]}`,
	`{"deliverystreamname":"s","RECORDS":[{"data":"AA=="}]}`,
	`{"DeliveryſtreamName":"s","Recordſ":[{"Dat\u0061":"AA=="}]}`,
	`{"DeliveryStreamName":"a","DeliveryStreamName":"b","Records":[{"Data":"AA==","Data":"AQ=="}]}`,
	`{"Records":[{"Data":"AA=="},{"Data":"AQ=="}],"Records":[{}]}`,
	`{"Records":[{"Data":"AA=="},{"Data":"AQ=="},{"Data":"Ag=="}],"Records":[{}],"Records":[null,{},{}]}`,
	`{"Records":[{"Data":"AA=="}],"Records":[],"Records":[{}]}`,
	`{"Records":[{"Data":"AA=="}],"Records":null,"Records":[{}]}`,
	`{"Record":{"Data":"AA=="},"Record":{},"Record":null}`,
	`{"Records":[null,{"Data":null},{"Other":[1,2,{"x":"y"}]}]}`,
	`{"DeliveryStreamName":null,"Records":[]}`,
	`null`, ` null `, `{}`, `[]`, `"x"`, `1`, `true`, ``, ` `, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`,
	`{"Records":[{"Data":"AA=="}]}x`, `{"Records":[{"Data":"AA=="},]}`, `{"Records":[{"Data":"A"}]}`,
	`{"Records":[{"Data":"AB=="}]}`, `{"Records":[{"Data":"AA"}]}`, `{"Records":[{"Data":1}]}`,
	`{"Records":{"Data":"AA=="}}`, `{"Records":"x"}`, `{"Records":[1]}`, `{"DeliveryStreamName":1}`,
	`{"Record":[]}`, `{"Record":"x"}`, `{"x":[[[[[]]]]],"y":{"z":{"w":-1.5e+10}},"v":[true,false,null,"\ud83d\ude00"]}`,
	`{"x":01}`, `{"x":-}`, `{"x":1.}`, `{"x":1e}`, `{"x":.5}`, `{"x":tru}`, `{"x":nul}`, `{"x":"\x"}`, `{"x":"\u12"}`,
	`{"x":"` + "\x01" + `"}`, `{"DeliveryStreamName":"\ud800"}`, `{"DeliveryStreamName":"` + "\xff\xfe" + `"}`,
	`{"DeliveryStreamName":"a\"b\\c\/d\b\f\n\r\t"}`, `{"Records":[{"Data":"AA==","Data":"\/\/\/\/"}]}`,
	`{"K":1}`, `{"Records":[{"Data":"AA=="}] , "Records":[{"Data":"AQ=="},{"Data":"Ag=="}]}`,
	"{\t\"Records\"\r:\n[\n{\"Data\":\"QUJD\"}]}",
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	`{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
}

// refUnmarshal is the reference decoder: encoding/json, except that the
// top-level value must be an object (encoding/json takes null as a no-op;
// every other non-object already fails).
func refUnmarshal(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return err
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == 'n' {
		return errors.New("top-level null")
	}
	return nil
}

// checkAgainstEncodingJSON decodes body with both decoders and reports any
// difference in acceptance or in the decoded values.
func checkAgainstEncodingJSON(t *testing.T, req *putRequest, body []byte) {
	t.Helper()
	var rb refBatch
	refErr := refUnmarshal(body, &rb)
	err := decodePutRequest(req, body, true)
	if (err == nil) != (refErr == nil) {
		t.Fatalf("batch %q: decoder err=%v, encoding/json err=%v", body, err, refErr)
	}
	if err == nil {
		if string(req.name) != rb.DeliveryStreamName {
			t.Fatalf("batch %q: name %q, want %q", body, req.name, rb.DeliveryStreamName)
		}
		if req.count <= maxBatchRecords {
			recs := req.records()
			if len(recs) != len(rb.Records) || (rb.Records == nil) != !req.hasRecords {
				t.Fatalf("batch %q: %d records (present %v), want %d (nil %v)", body, len(recs), req.hasRecords, len(rb.Records), rb.Records == nil)
			}
			for i := range recs {
				if !bytes.Equal(recs[i].Data, rb.Records[i].Data) || (recs[i].Data == nil) != (rb.Records[i].Data == nil) {
					t.Fatalf("batch %q: record %d = %q (nil %v), want %q (nil %v)", body, i,
						recs[i].Data, recs[i].Data == nil, rb.Records[i].Data, rb.Records[i].Data == nil)
				}
			}
		} else if len(rb.Records) != req.count {
			t.Fatalf("batch %q: count %d, want %d", body, req.count, len(rb.Records))
		}
	}

	var rp refPut
	refErr = refUnmarshal(body, &rp)
	err = decodePutRequest(req, body, false)
	if (err == nil) != (refErr == nil) {
		t.Fatalf("put %q: decoder err=%v, encoding/json err=%v", body, err, refErr)
	}
	if err == nil {
		if string(req.name) != rp.DeliveryStreamName {
			t.Fatalf("put %q: name %q, want %q", body, req.name, rp.DeliveryStreamName)
		}
		var data []byte
		if len(req.recs) > 0 {
			data = req.recs[0].Data
		}
		if !bytes.Equal(data, rp.Record.Data) || (data == nil) != (rp.Record.Data == nil) {
			t.Fatalf("put %q: data %q (nil %v), want %q (nil %v)", body, data, data == nil, rp.Record.Data, rp.Record.Data == nil)
		}
	}
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	var req putRequest
	for _, s := range decodeSeeds {
		checkAgainstEncodingJSON(t, &req, []byte(s))
	}
}

func FuzzDecodePutRequest(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	var req putRequest // reused, as the handler's pool does
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAgainstEncodingJSON(t, &req, body)
	})
}
