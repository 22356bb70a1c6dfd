package dspygrpc_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dspy-grpc/dspy-grpc/clients/go/dspygrpc"
)

// The README's hello world (compiled by `go test`; it needs a server to run).
func Example() {
	type QA struct{ Question string `json:"question"` }
	type Answer struct{ Answer string `json:"answer"` }
	ctx := context.Background()

	client, err := dspygrpc.NewClient("127.0.0.1:50051")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	pred, err := dspygrpc.Predict[QA, Answer](client).Call(ctx, QA{Question: "What is the capital of France?"}, dspygrpc.WithLM(dspygrpc.Scripted(Answer{Answer: "Paris"})))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pred.Outputs.Answer)
}
