package dspygrpc

import (
	"context"

	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

// UsageQuery selects and buckets usage from the server's usage ledger (see QueryUsage). Empty
// filters match everything; Start and End are inclusive UTC days, "YYYY-MM-DD".
type UsageQuery struct {
	// Period buckets the rows: pb.UsagePeriod_USAGE_PERIOD_DAY, _MONTH or _TOTAL (the default).
	Period pb.UsagePeriod
	// GroupBy keeps these dimensions apart (pb.UsageDimension_USAGE_DIMENSION_PROGRAM, _API_KEY, _MODEL).
	GroupBy []pb.UsageDimension
	// Programs ("qa" or "programs/qa"; "" for inline modules and raw LM calls), API key ids, model aliases.
	Programs, APIKeyIDs, Models []string
	Start, End                  string
	// PageSize is the number of rows fetched per call (0: the server's default); every page is fetched.
	PageSize int32
}

// UsageReport is every row of a usage query and their total.
type UsageReport struct {
	Rows  []*pb.UsageRow
	Total *pb.UsageRow
}

// QueryUsage returns LM calls, cache hits, tokens and cost (USD) from the usage ledger, summed per
// period and grouped dimension. It needs an API key with the admin scope.
//
//	report, err := client.QueryUsage(ctx, dspygrpc.UsageQuery{
//		Period:  pb.UsagePeriod_USAGE_PERIOD_DAY,
//		GroupBy: []pb.UsageDimension{pb.UsageDimension_USAGE_DIMENSION_PROGRAM},
//	})
func (c *Client) QueryUsage(ctx context.Context, query UsageQuery) (*UsageReport, error) {
	programs := make([]string, len(query.Programs))
	for i, name := range query.Programs {
		if name != "" {
			name = ProgramName(name)
		}
		programs[i] = name
	}
	report := &UsageReport{}
	token := ""
	for {
		page, err := c.usage.QueryUsage(ctx, &pb.QueryUsageRequest{
			Programs: programs, ApiKeyIds: query.APIKeyIDs, Models: query.Models,
			StartDay: query.Start, EndDay: query.End, Period: query.Period, GroupBy: query.GroupBy,
			PageSize: query.PageSize, PageToken: token,
		})
		if err != nil {
			return nil, asError(err)
		}
		report.Rows = append(report.Rows, page.GetRows()...)
		report.Total = page.GetTotal()
		if token = page.GetNextPageToken(); token == "" {
			return report, nil
		}
	}
}

// Usage is the generated UsageService stub.
func (c *Client) Usage() pb.UsageServiceClient { return c.usage }
