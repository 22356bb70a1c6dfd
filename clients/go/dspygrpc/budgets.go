package dspygrpc

import (
	"context"
	"iter"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

// MicrosPerUSD is one US dollar in micro-dollars, the unit budgets are counted in.
const MicrosPerUSD int64 = 1_000_000

// BudgetName returns "budgets/{id}" for an id or a name.
func BudgetName(name string) string {
	if strings.HasPrefix(name, "budgets/") {
		return name
	}
	return "budgets/" + name
}

// BudgetSubject is what a budget limits: set exactly one field. Program takes an id or "programs/{id}".
type BudgetSubject struct {
	Program  string
	APIKeyID string
}

// CreateBudget limits what a program or an API key spends per period (DAY, MONTH or TOTAL; 0 means
// DAY) to limitMicros micro-dollars, as "budgets/{id}". Needs the admin scope.
//
//	budget, err := client.CreateBudget(ctx, "qa-daily", dspygrpc.BudgetSubject{Program: "qa"},
//		pb.BudgetPeriod_BUDGET_PERIOD_DAY, 10*dspygrpc.MicrosPerUSD)
func (c *Client) CreateBudget(ctx context.Context, id string, subject BudgetSubject, period pb.BudgetPeriod, limitMicros int64) (*pb.Budget, error) {
	program := subject.Program
	if program != "" {
		program = ProgramName(program)
	}
	request := &pb.CreateBudgetRequest{BudgetId: strings.TrimPrefix(id, "budgets/"), Budget: &pb.Budget{
		Program: program, ApiKeyId: subject.APIKeyID, Period: period, LimitMicros: limitMicros,
	}}
	response, err := c.budgets.CreateBudget(ctx, request)
	return response, asError(err)
}

// GetBudget returns a budget with what it spent (SpentMicros, ReservedMicros, RemainingMicros) in its
// current period.
func (c *Client) GetBudget(ctx context.Context, name string) (*pb.Budget, error) {
	response, err := c.budgets.GetBudget(ctx, &pb.GetBudgetRequest{Name: BudgetName(name)})
	return response, asError(err)
}

// UpdateBudget changes the fields in paths (limit_micros, period; none means both) of budget (its
// Name set). A non-empty budget.Etag must match, else ABORTED with reason ETAG_MISMATCH.
func (c *Client) UpdateBudget(ctx context.Context, budget *pb.Budget, paths ...string) (*pb.Budget, error) {
	request := &pb.UpdateBudgetRequest{Budget: budget, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}
	response, err := c.budgets.UpdateBudget(ctx, request)
	return response, asError(err)
}

// DeleteBudget deletes a budget; a non-empty etag must match.
func (c *Client) DeleteBudget(ctx context.Context, name, etag string) error {
	_, err := c.budgets.DeleteBudget(ctx, &pb.DeleteBudgetRequest{Name: BudgetName(name), Etag: etag})
	return asError(err)
}

// ListBudgets yields every budget (config and created ones) in id order, fetching pages as needed.
func (c *Client) ListBudgets(ctx context.Context) iter.Seq2[*pb.Budget, error] {
	return pages(func(token string) ([]*pb.Budget, string, error) {
		page, err := c.budgets.ListBudgets(ctx, &pb.ListBudgetsRequest{PageToken: token})
		return page.GetBudgets(), page.GetNextPageToken(), asError(err)
	})
}
