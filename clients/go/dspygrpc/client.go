// Package dspygrpc is the Go client for dspy-grpc: it runs DSPy modules and stored programs on a
// dspy-grpc server, with inputs and outputs as your own struct types.
//
//	type QA struct{ Question string `json:"question"` }
//	type Answer struct{ Answer string `json:"answer"` }
//
//	client, err := dspygrpc.NewClient("127.0.0.1:50051")
//	defer client.Close()
//	pred, err := dspygrpc.Predict[QA, Answer](client).Call(ctx, QA{Question: "Capital of France?"}, dspygrpc.WithLM(dspygrpc.Model("dummy")))
//	fmt.Println(pred.Outputs.Answer)
//
// The generated messages and stubs are in package dspygrpcv1 (gen/dspy_grpc/v1).
package dspygrpc

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

// DefaultAddress is where `make serve` listens.
const DefaultAddress = "127.0.0.1:50051"

// Client is a connection to a dspy-grpc server. It is safe for concurrent use.
type Client struct {
	conn      *grpc.ClientConn
	inference pb.InferenceServiceClient
	programs  pb.ProgramServiceClient
	budgets   pb.BudgetServiceClient
}

// NewClient connects to target ("host:port", or any gRPC target string). Without options the
// connection is plaintext; pass grpc.WithTransportCredentials for TLS. The connection is made
// lazily, on the first call.
func NewClient(target string, opts ...grpc.DialOption) (*Client, error) {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, inference: pb.NewInferenceServiceClient(conn), programs: pb.NewProgramServiceClient(conn),
		budgets: pb.NewBudgetServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Inference is the generated InferenceService stub, for calls this package does not wrap.
func (c *Client) Inference() pb.InferenceServiceClient { return c.inference }

// Programs is the generated ProgramService stub.
func (c *Client) Programs() pb.ProgramServiceClient { return c.programs }

// Budgets is the generated BudgetService stub.
func (c *Client) Budgets() pb.BudgetServiceClient { return c.budgets }
