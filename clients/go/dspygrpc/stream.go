package dspygrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

// Tool is a tool a ReAct agent may call, run in this process: it gets the arguments the LM chose
// and returns any JSON-encodable value (the agent's observation). A returned error becomes the
// observation "Execution error in <tool>: <error>", as in DSPy.
type Tool func(ctx context.Context, args map[string]any) (any, error)

// WithTools gives the tools a ReAct program calls that the server does not run itself (those
// without a `builtin`). Call and Stream then use InferenceService.Run and answer each tool call by
// running the tool here.
func WithTools(tools map[string]Tool) CallOption {
	return func(c *callConfig) { c.tools = tools }
}

// WithToolTimeout is how long the server waits for each tool result (default: the call's deadline).
func WithToolTimeout(d time.Duration) CallOption {
	return func(c *callConfig) { c.toolTimeout = d }
}

// WithMaxConcurrency is how many Batch items the server runs at the same time (default 8, at most 64).
func WithMaxConcurrency(n int) CallOption {
	return func(c *callConfig) { c.maxConcurrency = n }
}

// Event is one event of a streamed run. Raw is the event as received: switch on
// Raw.GetEvent().(type), or use Raw.GetFieldDelta(), Raw.GetToolCallFinished(), ... Prediction is
// set on the last event only, decoded into Out.
type Event[Out any] struct {
	Raw        *pb.PredictEvent
	Prediction *Prediction[Out]
}

// Stream runs the module once and yields events as they happen: output text as the LM writes it
// (field_delta), modules starting and finishing, tool calls, and last the prediction. With
// WithTools, the calls of those tools are run here and answered. Stopping the loop early cancels
// the call.
//
//	for event, err := range qa.Stream(ctx, in) {
//		if err != nil { return err }
//		fmt.Print(event.Raw.GetFieldDelta().GetText())
//	}
func (m *Module[In, Out]) Stream(ctx context.Context, inputs In, opts ...CallOption) iter.Seq2[*Event[Out], error] {
	return func(yield func(*Event[Out], error) bool) {
		request := &pb.PredictRequest{}
		if err := m.target(request); err != nil {
			yield(nil, err)
			return
		}
		config := m.callConfigFor(opts)
		var err error
		if request.InputsJson, err = toJSONObject(inputs, "inputs"); err != nil {
			yield(nil, err)
			return
		}
		request.Lm, request.IncludeTrace = config.lm, config.includeTrace
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()

		var recv func() (*pb.PredictEvent, error)
		if config.tools != nil {
			run, err := m.startRun(ctx, request, config)
			if err != nil {
				yield(nil, err)
				return
			}
			recv = run.recv
		} else {
			streamRequest := &pb.StreamPredictRequest{InputsJson: request.InputsJson, Lm: request.Lm, IncludeTrace: request.IncludeTrace}
			if m.spec != nil {
				streamRequest.Target = &pb.StreamPredictRequest_Module{Module: m.spec}
			} else {
				streamRequest.Target = &pb.StreamPredictRequest_Program{Program: m.program}
			}
			stream, err := m.client.inference.StreamPredict(ctx, streamRequest, config.grpcOptions...)
			if err != nil {
				yield(nil, asError(err))
				return
			}
			recv = stream.Recv
		}
		for {
			raw, err := recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, asError(err))
				return
			}
			event := &Event[Out]{Raw: raw}
			if p := raw.GetPrediction(); p != nil {
				if event.Prediction, err = newPrediction[Out](p); err != nil {
					yield(nil, err)
					return
				}
			}
			if !yield(event, nil) {
				return
			}
		}
	}
}

// run is a Run call whose tool calls are answered by the caller's tools.
type run struct {
	ctx    context.Context
	stream pb.InferenceService_RunClient
	tools  map[string]Tool
	sendMu sync.Mutex
}

func (m *Module[In, Out]) startRun(ctx context.Context, request *pb.PredictRequest, config callConfig) (*run, error) {
	stream, err := m.client.inference.Run(ctx, config.grpcOptions...)
	if err != nil {
		return nil, asError(err)
	}
	start := &pb.RunStart{Request: request}
	for name := range config.tools {
		start.Tools = append(start.Tools, name)
	}
	if config.toolTimeout > 0 {
		start.ToolTimeout = durationpb.New(config.toolTimeout)
	}
	r := &run{ctx: ctx, stream: stream, tools: config.tools}
	if err := r.send(&pb.RunRequest{Message: &pb.RunRequest_Start{Start: start}}); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *run) send(message *pb.RunRequest) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if err := r.stream.Send(message); err != nil && !errors.Is(err, io.EOF) {
		return asError(err)
	}
	return nil
}

// recv returns the next event, starting the tool of every tool_call in the background.
func (r *run) recv() (*pb.PredictEvent, error) {
	event, err := r.stream.Recv()
	if err != nil {
		return nil, err
	}
	if call := event.GetToolCall(); call != nil {
		go func() { _ = r.send(r.answer(call)) }()
	}
	if event.GetPrediction() != nil {
		r.sendMu.Lock()
		_ = r.stream.CloseSend()
		r.sendMu.Unlock()
	}
	return event, nil
}

func (r *run) answer(call *pb.ToolCall) *pb.RunRequest {
	result := &pb.ToolResult{CallId: call.GetCallId()}
	tool, ok := r.tools[call.GetTool()]
	var output any
	var err error
	if !ok {
		err = fmt.Errorf("no tool named %q in this client", call.GetTool())
	} else {
		var args map[string]any
		if err = json.Unmarshal(exactJSON(call.GetArgsJson(), call.GetArgs()), &args); err == nil {
			output, err = callTool(r.ctx, tool, args)
		}
	}
	if err == nil {
		var value []byte
		if value, err = json.Marshal(output); err == nil {
			result.Outcome = &pb.ToolResult_OutputJson{OutputJson: string(value)}
		}
	}
	if err != nil {
		result.Outcome = &pb.ToolResult_Error{Error: err.Error()}
	}
	return &pb.RunRequest{Message: &pb.RunRequest_ToolResult{ToolResult: result}}
}

// callTool runs a tool, turning a panic into an error (the agent observes it; the run goes on).
func callTool(ctx context.Context, tool Tool, args map[string]any) (output any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return tool(ctx, args)
}

// BatchItem is one Batch result: the prediction for Inputs[Index], or why that item failed.
type BatchItem[Out any] struct {
	Index      int
	Prediction *Prediction[Out]
	// Err is the *Error the item would have failed with as a Call (or an *OutputError).
	Err error
}

// Batch runs the module on each of inputs (BatchPredict) and yields each item's result as it
// finishes, in completion order. A failed item carries its Err; the sequence's own error is for
// a bad target or request, or a broken connection.
func (m *Module[In, Out]) Batch(ctx context.Context, inputs []In, opts ...CallOption) iter.Seq2[BatchItem[Out], error] {
	return func(yield func(BatchItem[Out], error) bool) {
		config := callConfigOf(opts)
		request := &pb.BatchPredictRequest{Lm: config.lm, IncludeTrace: config.includeTrace, MaxConcurrency: int32(config.maxConcurrency)}
		if m.err != nil {
			yield(BatchItem[Out]{}, m.err)
			return
		}
		if m.spec != nil {
			request.Target = &pb.BatchPredictRequest_Module{Module: m.spec}
		} else {
			request.Target = &pb.BatchPredictRequest_Program{Program: m.program}
		}
		for i, in := range inputs {
			values, err := toJSONObject(in, fmt.Sprintf("inputs[%d]", i))
			if err != nil {
				yield(BatchItem[Out]{}, err)
				return
			}
			request.InputsJson = append(request.InputsJson, values)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := m.client.inference.BatchPredict(ctx, request, config.grpcOptions...)
		if err != nil {
			yield(BatchItem[Out]{}, asError(err))
			return
		}
		for {
			response, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(BatchItem[Out]{}, asError(err))
				return
			}
			item := BatchItem[Out]{Index: int(response.GetIndex())}
			if e := response.GetError(); e != nil {
				item.Err = itemError(e)
			} else {
				item.Prediction, item.Err = newPrediction[Out](response.GetPrediction())
			}
			if !yield(item, nil) {
				return
			}
		}
	}
}

// itemError is a BatchPredict item's error as the *Error a Call would have returned.
func itemError(e *pb.ItemError) *Error {
	err := &Error{Code: codes.Unknown, Message: e.GetMessage(), Reason: e.GetReason(), Domain: "dspy-grpc", Metadata: map[string]string{}}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if codeName(c) == e.GetCode() {
			err.Code = c
		}
	}
	for k, v := range e.GetMetadata() {
		err.Metadata[k] = v
	}
	for _, v := range e.GetFieldViolations() {
		err.FieldViolations = append(err.FieldViolations, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
	}
	err.RequestID = err.Metadata["request_id"]
	return err
}
