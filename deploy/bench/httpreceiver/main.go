// Command httpreceiver runs the test receiver of deploy/testpeers/receiver
// (an HTTP endpoint written from Firehose's HTTP endpoint delivery
// specification, which checks every request) as a process, for the
// benchmark scripts:
//
//	httpreceiver -addr 127.0.0.1:4580 [-delay 20ms] [-access-key KEY]
//
// It keeps counts only. GET /stats answers them as JSON
// ({"requests","accepted","records","uniqueRecords","bytes","rejected"});
// on SIGTERM or SIGINT it prints the same line to stdout and exits.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-dev/sluice/deploy/testpeers/receiver"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4580", "listen address")
	delay := flag.Duration("delay", 0, "wait this long before answering each request")
	key := flag.String("access-key", "", "require this X-Amz-Firehose-Access-Key (default: none)")
	flag.Parse()

	r, err := receiver.Start(receiver.Config{Addr: *addr, AccessKey: *key, CountOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	if *delay > 0 {
		r.SetBehaviour(receiver.Behaviour{Delay: *delay})
	}
	fmt.Fprintf(os.Stderr, "httpreceiver: listening on %s\n", r.URL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	if err := r.Close(); err != nil {
		log.Print(err)
	}
	out, _ := json.Marshal(r.Stats())
	fmt.Println(string(out))
}
