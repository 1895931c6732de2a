package assemble

import (
	"github.com/sluice-dev/sluice/config"
	"github.com/sluice-dev/sluice/pipeline/status"
)

// newStatus builds the status page over the daemon's registry, served
// beside /metrics under the same token.
func (d *Daemon) newStatus() error {
	page, err := status.New(status.Options{
		Gatherer: d.reg,
		Streams:  d.statusStreams,
		Version:  d.opts.Version,
		Started:  d.started,
		Logger:   d.log,
	})
	if err != nil {
		return err
	}
	d.status = page
	d.ops.handle("GET /status", page)
	d.ops.handle("GET /status.json", page)
	return nil
}

// list publishes the current streams to the status page (after start and
// after every reload: the page reads them from other goroutines).
func (d *Daemon) list() {
	streams := make([]*stream, 0, len(d.streams))
	for _, name := range d.names() {
		streams = append(streams, d.streams[name])
	}
	d.listed.Store(&streams)
}

func (d *Daemon) statusStreams() []status.Stream {
	listed := d.listed.Load()
	if listed == nil {
		return nil
	}
	out := make([]status.Stream, 0, len(*listed))
	for _, s := range *listed {
		sc := s.plan.cfg
		st := status.Stream{Name: s.name, Source: config.StreamDirectPut, Destination: sc.Destination.Type,
			ErrorOutput: errorOutputName(sc), Ready: d.health.reason(s.name)}
		if s.plan.hasSrc {
			st.Source = "kinesis"
		}
		if s.runner != nil {
			rs := s.runner.Status()
			st.LastError, st.LastErrorAt = rs.LastError, rs.LastErrorAt
		} else {
			st.Ready = "not running: its last reload failed"
		}
		out = append(out, st)
	}
	return out
}
