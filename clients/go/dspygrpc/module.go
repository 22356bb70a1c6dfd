package dspygrpc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"google.golang.org/grpc"

	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

// Adapter names how a predictor formats prompts and parses completions.
type Adapter = pb.AdapterKind

// The adapters.
const (
	AdapterChat    = pb.AdapterKind_ADAPTER_KIND_CHAT
	AdapterJSON    = pb.AdapterKind_ADAPTER_KIND_JSON
	AdapterXML     = pb.AdapterKind_ADAPTER_KIND_XML
	AdapterTwoStep = pb.AdapterKind_ADAPTER_KIND_TWO_STEP
)

// Module runs an inline module (Predict, ChainOfThought) or a stored program. In is the inputs'
// type and Out the outputs': structs with json tags, or map[string]any.
type Module[In, Out any] struct {
	client  *Client
	program string
	spec    *pb.ModuleSpec
	tools   map[string]Tool // tools of a ReAct agent that run here
	err     error           // a construction error, returned by every call
}

// PredictorOption sets up an inline module's predictor.
type PredictorOption func(*predictorConfig)

type predictorConfig struct {
	signature    string
	instructions *string
	adapter      Adapter
	lm           *pb.LMSpec
	extractionLM *pb.LMSpec
	demos        []any
	maxIters     int
}

// WithSignature gives the signature in DSPy's string form ("question, context: list[str] -> answer")
// instead of deriving it from the In and Out struct types.
func WithSignature(text string) PredictorOption {
	return func(c *predictorConfig) { c.signature = text }
}

// WithInstructions sets the task instructions.
func WithInstructions(text string) PredictorOption {
	return func(c *predictorConfig) { c.instructions = &text }
}

// WithAdapter picks the adapter (chat by default).
func WithAdapter(adapter Adapter) PredictorOption {
	return func(c *predictorConfig) { c.adapter = adapter }
}

// WithPredictorLM gives the predictor its own LM, which wins over the one given per call.
func WithPredictorLM(lm *pb.LMSpec) PredictorOption {
	return func(c *predictorConfig) { c.lm = lm }
}

// WithExtractionLM sets the LM that extracts the fields with AdapterTwoStep.
func WithExtractionLM(lm *pb.LMSpec) PredictorOption {
	return func(c *predictorConfig) { c.extractionLM = lm }
}

// WithDemos adds few-shot demos: values (structs or maps) holding input and output fields.
func WithDemos(demos ...any) PredictorOption {
	return func(c *predictorConfig) { c.demos = append(c.demos, demos...) }
}

// Predict is dspy.Predict, run inline. Its signature comes from the In and Out struct types unless
// WithSignature gives one.
func Predict[In, Out any](c *Client, opts ...PredictorOption) *Module[In, Out] {
	spec, err := moduleSpec[In, Out](false, opts)
	return &Module[In, Out]{client: c, spec: spec, err: err}
}

// ChainOfThought is dspy.ChainOfThought, run inline: the server adds a `reasoning` output field
// first (give Out a `json:"reasoning"` field to read it).
func ChainOfThought[In, Out any](c *Client, opts ...PredictorOption) *Module[In, Out] {
	spec, err := moduleSpec[In, Out](true, opts)
	return &Module[In, Out]{client: c, spec: spec, err: err}
}

// FromSpec runs a module given as its ModuleSpec message.
func FromSpec[In, Out any](c *Client, spec *pb.ModuleSpec) *Module[In, Out] {
	return &Module[In, Out]{client: c, spec: spec}
}

// Program runs a stored program: "qa", "programs/qa" or a revision, "programs/qa@r0002".
func Program[In, Out any](c *Client, name string) *Module[In, Out] {
	return &Module[In, Out]{client: c, program: ProgramName(name)}
}

// ProgramName turns "qa" into "programs/qa" (names that already start with "programs/" are kept).
func ProgramName(nameOrID string) string {
	if strings.HasPrefix(nameOrID, "programs/") {
		return nameOrID
	}
	return "programs/" + nameOrID
}

func moduleSpec[In, Out any](chainOfThought bool, opts []PredictorOption) (*pb.ModuleSpec, error) {
	var config predictorConfig
	for _, opt := range opts {
		opt(&config)
	}
	var skip []string
	if chainOfThought {
		skip = []string{"reasoning"} // the server adds it
	}
	predictor, err := predictorSpec[In, Out](config, skip...)
	if err != nil {
		return nil, err
	}
	if chainOfThought {
		return &pb.ModuleSpec{Module: &pb.ModuleSpec_ChainOfThought{ChainOfThought: &pb.ChainOfThoughtModule{Predictor: predictor}}}, nil
	}
	return &pb.ModuleSpec{Module: &pb.ModuleSpec_Predict{Predict: &pb.PredictModule{Predictor: predictor}}}, nil
}

// predictorSpec builds a predictor; its signature leaves out the outputs the module adds itself.
func predictorSpec[In, Out any](config predictorConfig, moduleOutputs ...string) (*pb.PredictorSpec, error) {
	var sig *pb.Signature
	if config.signature != "" {
		sig = &pb.Signature{Text: config.signature, Instructions: config.instructions}
	} else {
		var err error
		if sig, err = signatureOf(reflect.TypeFor[In](), reflect.TypeFor[Out](), config.instructions, moduleOutputs...); err != nil {
			return nil, err
		}
	}
	predictor := &pb.PredictorSpec{Signature: sig, Adapter: config.adapter, Lm: config.lm, ExtractionLm: config.extractionLM}
	for i, demo := range config.demos {
		data, err := toJSONObject(demo, fmt.Sprintf("demos[%d]", i))
		if err != nil {
			return nil, err
		}
		predictor.Demos = append(predictor.Demos, &pb.Example{DataJson: data})
	}
	return predictor, nil
}

// Spec is the inline module's ModuleSpec (to store it with CreateProgram); nil for a stored program.
func (m *Module[In, Out]) Spec() (*pb.ModuleSpec, error) { return m.spec, m.err }

// CallOption adjusts one call.
type CallOption func(*callConfig)

type callConfig struct {
	lm             *pb.LMSpec
	includeTrace   bool
	predictor      string
	adapter        Adapter
	grpcOptions    []grpc.CallOption
	tools          map[string]Tool
	toolTimeout    time.Duration
	maxConcurrency int
}

// WithLM is the LM for predictors that do not name their own (default: the server's default model).
func WithLM(lm *pb.LMSpec) CallOption { return func(c *callConfig) { c.lm = lm } }

// WithTrace asks for the per-predictor trace in Prediction.Raw.Trace.
func WithTrace() CallOption { return func(c *callConfig) { c.includeTrace = true } }

// ForPredictor names the predictor RenderPrompt and ParseCompletion work on (default: the only one).
func ForPredictor(name string) CallOption { return func(c *callConfig) { c.predictor = name } }

// UsingAdapter makes RenderPrompt and ParseCompletion use this adapter instead of the predictor's.
func UsingAdapter(adapter Adapter) CallOption { return func(c *callConfig) { c.adapter = adapter } }

// WithGRPCOptions passes options to the underlying gRPC call.
func WithGRPCOptions(opts ...grpc.CallOption) CallOption {
	return func(c *callConfig) { c.grpcOptions = append(c.grpcOptions, opts...) }
}

func callConfigOf(opts []CallOption) callConfig {
	var config callConfig
	for _, opt := range opts {
		opt(&config)
	}
	return config
}

// callConfigFor is callConfigOf plus the module's own tools (a call's WithTools wins by name).
func (m *Module[In, Out]) callConfigFor(opts []CallOption) callConfig {
	config := callConfigOf(opts)
	if len(m.tools) > 0 {
		merged := map[string]Tool{}
		for name, tool := range m.tools {
			merged[name] = tool
		}
		for name, tool := range config.tools {
			merged[name] = tool
		}
		config.tools = merged
	}
	return config
}

// Usage is the tokens one model spent.
type Usage struct {
	Model                                       string
	PromptTokens, CompletionTokens, TotalTokens int64
	Calls                                       int32
}

// Prediction is the result of a call: Outputs decoded into Out, plus usage and the raw message.
type Prediction[Out any] struct {
	Outputs Out
	Usage   []Usage
	// Program and RevisionID name the stored program that ran (empty for inline modules).
	Program, RevisionID string
	// Raw is the Prediction message as received (trace, adapter fallbacks, ...).
	Raw *pb.Prediction
}

func newPrediction[Out any](raw *pb.Prediction) (*Prediction[Out], error) {
	outputs, err := decodeOutputs[Out](exactJSON(raw.GetOutputsJson(), raw.GetOutputs()))
	if err != nil {
		return nil, err
	}
	p := &Prediction[Out]{Outputs: outputs, Program: raw.GetProgram(), RevisionID: raw.GetRevisionId(), Raw: raw}
	for _, u := range raw.GetUsage() {
		p.Usage = append(p.Usage, Usage{u.GetModel(), u.GetPromptTokens(), u.GetCompletionTokens(), u.GetTotalTokens(), u.GetCalls()})
	}
	return p, nil
}

// Call runs the module once on inputs (with WithTools, through Run, running the tools here).
func (m *Module[In, Out]) Call(ctx context.Context, inputs In, opts ...CallOption) (*Prediction[Out], error) {
	request := &pb.PredictRequest{}
	if err := m.target(request); err != nil {
		return nil, err
	}
	config := m.callConfigFor(opts)
	if config.tools != nil {
		for event, err := range m.Stream(ctx, inputs, opts...) {
			if err != nil {
				return nil, err
			}
			if event.Prediction != nil {
				return event.Prediction, nil
			}
		}
		return nil, errors.New("dspygrpc: the run ended without a prediction")
	}
	var err error
	if request.InputsJson, err = toJSONObject(inputs, "inputs"); err != nil {
		return nil, err
	}
	request.Lm, request.IncludeTrace = config.lm, config.includeTrace
	response, err := m.client.inference.Predict(ctx, request, config.grpcOptions...)
	if err != nil {
		return nil, asError(err)
	}
	return newPrediction[Out](response.GetPrediction())
}

// target sets the request's program or module.
func (m *Module[In, Out]) target(request any) error {
	if m.err != nil {
		return m.err
	}
	switch r := request.(type) {
	case *pb.PredictRequest:
		if m.spec != nil {
			r.Target = &pb.PredictRequest_Module{Module: m.spec}
		} else {
			r.Target = &pb.PredictRequest_Program{Program: m.program}
		}
	case *pb.RenderPromptRequest:
		if m.spec != nil {
			r.Target = &pb.RenderPromptRequest_Module{Module: m.spec}
		} else {
			r.Target = &pb.RenderPromptRequest_Program{Program: m.program}
		}
	case *pb.ParseCompletionRequest:
		if m.spec != nil {
			r.Target = &pb.ParseCompletionRequest_Module{Module: m.spec}
		} else {
			r.Target = &pb.ParseCompletionRequest_Program{Program: m.program}
		}
	}
	return nil
}

// RenderPrompt returns the exact messages one predictor would send to its LM, without calling it.
func (m *Module[In, Out]) RenderPrompt(ctx context.Context, inputs In, opts ...CallOption) (*pb.RenderPromptResponse, error) {
	request := &pb.RenderPromptRequest{}
	if err := m.target(request); err != nil {
		return nil, err
	}
	config := callConfigOf(opts)
	var err error
	if request.InputsJson, err = toJSONObject(inputs, "inputs"); err != nil {
		return nil, err
	}
	request.Predictor, request.Adapter = config.predictor, config.adapter
	response, err := m.client.inference.RenderPrompt(ctx, request, config.grpcOptions...)
	return response, asError(err)
}

// Parsed is a completion parsed into outputs.
type Parsed[Out any] struct {
	Outputs Out
	// Adapter is the adapter that parsed it: "chat", "json", "xml" or "two_step".
	Adapter string
	Raw     *pb.ParseCompletionResponse
}

// ParseCompletion parses an LM completion the way one predictor's adapter would.
func (m *Module[In, Out]) ParseCompletion(ctx context.Context, completion string, opts ...CallOption) (*Parsed[Out], error) {
	request := &pb.ParseCompletionRequest{Completion: completion}
	if err := m.target(request); err != nil {
		return nil, err
	}
	config := callConfigOf(opts)
	request.Predictor, request.Adapter = config.predictor, config.adapter
	response, err := m.client.inference.ParseCompletion(ctx, request, config.grpcOptions...)
	if err != nil {
		return nil, asError(err)
	}
	outputs, err := decodeOutputs[Out](exactJSON(response.GetOutputsJson(), response.GetOutputs()))
	if err != nil {
		return nil, err
	}
	return &Parsed[Out]{Outputs: outputs, Adapter: response.GetAdapter(), Raw: response}, nil
}
