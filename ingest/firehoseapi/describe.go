package firehoseapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/sluice-dev/sluice/pipeline"
)

// DescribeDeliveryStream, built from the configuration and the
// destinations' own descriptions (pipeline.Description).

const destinationID = "destinationId-000000000001"

// destinationDescription is one member of Destinations: the DestinationId,
// then the destination's own members (pipeline.Description), encoded once
// by NewHandler.
type destinationDescription json.RawMessage

func (d destinationDescription) MarshalJSON() ([]byte, error) { return d, nil }

// encodeDestination encodes desc as a DestinationDescription object:
// {"DestinationId": destinationID, <members in name order>}. A member named
// DestinationId is ignored (the id is the handler's).
func encodeDestination(desc pipeline.Description) (destinationDescription, error) {
	id, _ := json.Marshal(destinationID)
	out := append([]byte(`{"DestinationId":`), id...)
	for _, name := range slices.Sorted(maps.Keys(desc)) {
		if name == "DestinationId" {
			continue
		}
		k, _ := json.Marshal(name)
		v, err := json.Marshal(desc[name])
		if err != nil {
			return nil, fmt.Errorf("destination description member %s: %w", name, err)
		}
		out = append(append(append(append(out, ','), k...), ':'), v...)
	}
	return append(out, '}'), nil
}

type kinesisSource struct {
	KinesisStreamARN       string
	RoleARN                string
	DeliveryStartTimestamp json.Number `json:",omitempty"`
}

type sourceDescription struct {
	DirectPutSourceDescription     *struct{}      `json:",omitempty"`
	KinesisStreamSourceDescription *kinesisSource `json:",omitempty"`
}

type deliveryStreamDescription struct {
	DeliveryStreamName                    string
	DeliveryStreamARN                     string
	DeliveryStreamStatus                  string
	DeliveryStreamType                    string
	VersionId                             string //nolint:revive // AWS member name
	CreateTimestamp                       json.Number
	DeliveryStreamEncryptionConfiguration encryptionDescription
	Source                                sourceDescription
	Destinations                          []destinationDescription
	HasMoreDestinations                   bool
}

// encryptionDescription is Firehose's DeliveryStreamEncryptionConfiguration.
type encryptionDescription struct {
	KeyARN  string `json:",omitempty"`
	KeyType string `json:",omitempty"`
	Status  string
}

func (h *handler) describeDeliveryStream(body []byte, key string) (any, *apiError) {
	var in struct {
		DeliveryStreamName          *string
		Limit                       *int
		ExclusiveStartDestinationId *string //nolint:revive // AWS member name
	}
	if e := unmarshalInput(body, &in); e != nil {
		return nil, e
	}
	var v validation
	v.checkLimit(in.Limit, 1, 10000)
	s, e := h.findStream(in.DeliveryStreamName, &v, key, "firehose:DescribeDeliveryStream")
	if e != nil {
		return nil, e
	}
	d := deliveryStreamDescription{
		DeliveryStreamName:   s.info.Name,
		DeliveryStreamARN:    s.arn,
		DeliveryStreamStatus: "ACTIVE",
		DeliveryStreamType:   s.info.Type,
		VersionId:            s.info.VersionID,
		CreateTimestamp:      epochSeconds(s.info.Created.UnixMilli()),
		Destinations:         []destinationDescription{},
	}
	d.DeliveryStreamEncryptionConfiguration.Status = "DISABLED"
	if e := s.info.Encryption; e != nil {
		d.DeliveryStreamEncryptionConfiguration = encryptionDescription{KeyARN: e.KeyARN, KeyType: e.KeyType, Status: "ENABLED"}
	}
	if s.info.Type == TypeKinesisStreamAsSource {
		d.Source.KinesisStreamSourceDescription = &kinesisSource{
			KinesisStreamARN: s.info.KinesisStreamARN,
			RoleARN:          h.roleARN(s),
		}
		if t := s.info.KinesisDeliveryStart; !t.IsZero() {
			d.Source.KinesisStreamSourceDescription.DeliveryStartTimestamp = epochSeconds(t.UnixMilli())
		}
	} else {
		d.Source.DirectPutSourceDescription = &struct{}{}
	}
	// The only destination id is destinationId-000000000001: starting after
	// it (or at anything sorting after it) yields none.
	if in.ExclusiveStartDestinationId == nil || *in.ExclusiveStartDestinationId < destinationID {
		d.Destinations = append(d.Destinations, s.dest)
	}
	return struct{ DeliveryStreamDescription deliveryStreamDescription }{d}, nil
}

// epochSeconds renders milliseconds since the epoch as fractional seconds.
func epochSeconds(ms int64) json.Number {
	return json.Number(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64))
}

func (h *handler) roleARN(s *stream) string {
	return cmp(s.info.RoleARN, "arn:aws:iam::"+h.account+":role/sluice")
}
