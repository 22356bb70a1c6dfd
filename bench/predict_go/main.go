// Command predict_go is the Go side of `make bench-predict`: it calls the stored program
// "programs/bench" (Predict "question -> answer") through the typed Go client and prints its
// figures as one JSON object on stdout.
//
//	go run . -address 127.0.0.1:50051 -calls 300 -seconds 5 [-cached]
//
// Sequential calls give the latency percentiles; then -inflight goroutines call in a loop for
// -seconds to give calls/s. With -cached every call asks the same question (answered from the
// server's LM cache after the first); otherwise every question is new.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dspy-grpc/dspy-grpc/clients/go/dspygrpc"
)

type question struct {
	Question string `json:"question"`
}

type answer struct {
	Answer string `json:"answer"`
}

func percentile(samples []time.Duration, q float64) float64 {
	sorted := append([]time.Duration(nil), samples...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	index := int(q * float64(len(sorted)))
	if index >= len(sorted) {
		index = len(sorted) - 1
	}
	return float64(sorted[index].Microseconds()) / 1000
}

func main() {
	address := flag.String("address", "127.0.0.1:50051", "server address")
	calls := flag.Int("calls", 300, "sequential calls for the latency figures")
	seconds := flag.Float64("seconds", 5, "duration of the in-flight run (0: skip it)")
	inFlight := flag.Int("inflight", 64, "calls in flight for the throughput run")
	cached := flag.Bool("cached", false, "ask the same question every time")
	flag.Parse()

	client, err := dspygrpc.NewClient(*address)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	program := dspygrpc.Program[question, answer](client, "bench")
	var counter atomic.Int64
	call := func() error {
		text := "What is the capital of France?"
		if !*cached {
			text = fmt.Sprintf("Go question %d %d?", os.Getpid(), counter.Add(1))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := program.Call(ctx, question{Question: text})
		return err
	}

	for i := 0; i < 20; i++ { // warm up (and fill the cache)
		if err := call(); err != nil {
			log.Fatal(err)
		}
	}
	latencies := make([]time.Duration, 0, *calls)
	for i := 0; i < *calls; i++ {
		started := time.Now()
		if err := call(); err != nil {
			log.Fatal(err)
		}
		latencies = append(latencies, time.Since(started))
	}
	figures := map[string]float64{"p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99)}

	if *seconds > 0 {
		var done atomic.Int64
		var failed atomic.Value
		stop := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
		started := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < *inFlight; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					if err := call(); err != nil {
						failed.Store(err)
						return
					}
					done.Add(1)
				}
			}()
		}
		wg.Wait()
		if err, ok := failed.Load().(error); ok {
			log.Fatal(err)
		}
		figures["calls_per_s"] = float64(done.Load()) / time.Since(started).Seconds()
	}
	if err := json.NewEncoder(os.Stdout).Encode(figures); err != nil {
		log.Fatal(err)
	}
}
