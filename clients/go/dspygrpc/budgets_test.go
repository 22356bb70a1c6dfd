package dspygrpc_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/dspy-grpc/dspy-grpc/clients/go/dspygrpc"
	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

// The budget helpers against the conformance server (BudgetService, exact micro-dollar amounts).
func TestBudgets(t *testing.T) {
	address := os.Getenv(addressEnv)
	if address == "" {
		t.Skip(addressEnv + " is not set (python -m tests.conformance.serve starts a server)")
	}
	client, err := dspygrpc.NewClient(address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	id := "go-budget-" + hex.EncodeToString(suffix)

	created, err := client.CreateBudget(ctx, id, dspygrpc.BudgetSubject{Program: "go-budgeted"},
		pb.BudgetPeriod_BUDGET_PERIOD_MONTH, dspygrpc.MicrosPerUSD/10)
	if err != nil {
		t.Fatal(err)
	}
	if created.GetName() != "budgets/"+id || created.GetProgram() != "programs/go-budgeted" ||
		created.GetLimitMicros() != 100_000 || created.GetRemainingMicros() != 100_000 ||
		created.GetSource() != pb.BudgetSource_BUDGET_SOURCE_API {
		t.Fatalf("unexpected budget %v", created)
	}
	created.LimitMicros = 250_000
	updated, err := client.UpdateBudget(ctx, created, "limit_micros")
	if err != nil || updated.GetLimitMicros() != 250_000 || updated.GetPeriod() != pb.BudgetPeriod_BUDGET_PERIOD_MONTH {
		t.Fatalf("update: %v %v", updated, err)
	}
	found := false
	for budget, err := range client.ListBudgets(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		found = found || budget.GetName() == "budgets/"+id
	}
	if !found {
		t.Fatalf("budgets/%s not listed", id)
	}
	if err := client.DeleteBudget(ctx, id, updated.GetEtag()); err != nil {
		t.Fatal(err)
	}
	_, err = client.GetBudget(ctx, id)
	var rpcErr *dspygrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Reason != "BUDGET_NOT_FOUND" {
		t.Fatalf("want BUDGET_NOT_FOUND, got %v", err)
	}
}
