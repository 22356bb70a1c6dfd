package dspygrpc_test

// GEPA and SIMBA optimization jobs started and followed through the generated OptimizationService
// client against the server at $DSPY_GRPC_CONFORMANCE_ADDR; skipped when it is unset.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

func TestGEPAAndSIMBAJobs(t *testing.T) {
	address := os.Getenv(addressEnv)
	if address == "" {
		t.Skip(addressEnv + " is not set (python -m tests.conformance.serve starts a server)")
	}
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	run := "goopt" + hex.EncodeToString(suffix)

	datasets := pb.NewDatasetServiceClient(conn)
	dataset, err := datasets.CreateDataset(ctx, &pb.CreateDatasetRequest{
		DatasetId: run, Dataset: &pb.Dataset{InputKeys: []string{"question"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := datasets.AppendExamples(ctx)
	if err != nil {
		t.Fatal(err)
	}
	request := &pb.AppendExamplesRequest{Dataset: dataset.GetName(), RequestId: run}
	for i := 0; i < 4; i++ {
		data, _ := structpb.NewStruct(map[string]any{
			"question": fmt.Sprintf("What is %d plus %d?", i, i+1), "answer": fmt.Sprint(2*i + 1),
		})
		request.Examples = append(request.Examples, &pb.Example{Data: data})
	}
	if err := stream.Send(request); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}

	var create pb.CreateProgramRequest
	programJSON := fmt.Sprintf(`{"programId": %q, "program": {"module": {"predict": {"predictor": {
		"signature": {"text": "question -> answer"}, "lm": {"model": "mock"}}}}}}`, run)
	if err := protojson.Unmarshal([]byte(programJSON), &create); err != nil {
		t.Fatal(err)
	}
	if _, err := pb.NewProgramServiceClient(conn).CreateProgram(ctx, &create); err != nil {
		t.Fatal(err)
	}

	jobs := pb.NewOptimizationServiceClient(conn)
	for name, settings := range map[string]string{
		"gepa":  `"gepa": {"maxMetricCalls": 12, "reflectionLm": {"model": "mock"}}`,
		"simba": `"simba": {"bsize": 2, "numCandidates": 2, "maxSteps": 1}`,
	} {
		t.Run(name, func(t *testing.T) {
			var optimization pb.Optimization
			body := fmt.Sprintf(`{"program": "programs/%s", "dataset": %q, "metric": {"exactMatch": {}},
				"numThreads": 2, %s}`, run, dataset.GetName(), settings)
			if err := protojson.Unmarshal([]byte(body), &optimization); err != nil {
				t.Fatal(err)
			}
			created, err := jobs.CreateOptimization(ctx, &pb.CreateOptimizationRequest{Optimization: &optimization})
			if err != nil {
				t.Fatal(err)
			}
			watch, err := jobs.WatchOptimization(ctx, &pb.WatchOptimizationRequest{Name: created.GetName()})
			if err != nil {
				t.Fatal(err)
			}
			var last *pb.Optimization
			for {
				message, err := watch.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				last = message.GetOptimization()
			}
			if last.GetState() != pb.JobState_JOB_STATE_SUCCEEDED {
				t.Fatalf("state %v, error %v", last.GetState(), last.GetError())
			}
			if last.GetResult().GetProgramRevision() == "" {
				t.Errorf("no revision written: %v", last.GetResult())
			}
			listed, err := jobs.ListOptimizationCandidates(ctx, &pb.ListOptimizationCandidatesRequest{Parent: created.GetName()})
			if err != nil {
				t.Fatal(err)
			}
			if len(listed.GetCandidates()) == 0 {
				t.Fatal("no candidates")
			}
			if name == "gepa" {
				progress := last.GetProgress()
				if progress.GetMetricCallsBudget() != 12 || progress.GetMetricCallsUsed() < 12 {
					t.Errorf("progress: %v", progress)
				}
				seed := listed.GetCandidates()[0]
				if seed.GetLabel() != "seed" || len(seed.GetParents()) != 0 || len(seed.GetInstanceScores()) != 4 {
					t.Errorf("seed candidate: %v", seed)
				}
			}
		})
	}
}
