package dspygrpc

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestErrorCarriesStatusDetails(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "bad inputs").WithDetails(
		&errdetails.ErrorInfo{Reason: "INVALID_ARGUMENT", Domain: "dspy-grpc", Metadata: map[string]string{"request_id": "req-1"}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "inputs.question", Description: "missing"}}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
	)
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if !errors.As(asError(st.Err()), &e) {
		t.Fatalf("not an *Error: %v", asError(st.Err()))
	}
	if e.CodeName() != "INVALID_ARGUMENT" || e.Reason != "INVALID_ARGUMENT" || e.Domain != "dspy-grpc" || e.RequestID != "req-1" {
		t.Errorf("unexpected error fields: %+v", e)
	}
	if len(e.FieldViolations) != 1 || e.FieldViolations[0] != (FieldViolation{"inputs.question", "missing"}) {
		t.Errorf("field violations: %+v", e.FieldViolations)
	}
	if e.RetryDelay != 1500*time.Millisecond {
		t.Errorf("retry delay: %v", e.RetryDelay)
	}
	if status.Code(e) != codes.InvalidArgument {
		t.Errorf("status.Code does not see the code: %v", status.Code(e))
	}
	want := "INVALID_ARGUMENT: bad inputs [INVALID_ARGUMENT] (inputs.question: missing)"
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}

type answer struct {
	Answer string   `json:"answer"`
	Score  float64  `json:"score"`
	Tags   []string `json:"tags,omitempty"`
	Note   *string  `json:"note"`
}

func TestDecodeOutputsChecksTheOutType(t *testing.T) {
	ok := []byte(`{"answer": "Paris", "score": 0.5, "reasoning": "extra fields are kept out"}`)
	got, err := decodeOutputs[answer](ok)
	if err != nil || got.Answer != "Paris" || got.Score != 0.5 || got.Note != nil {
		t.Fatalf("decodeOutputs = %+v, %v", got, err)
	}

	missing := []byte(`{"answer": "Paris"}`)
	var outputErr *OutputError
	if _, err := decodeOutputs[answer](missing); !errors.As(err, &outputErr) || outputErr.Field != "score" {
		t.Errorf("a missing required output: got %v", err)
	}

	mistyped := []byte(`{"answer": "Paris", "score": "high"}`)
	if _, err := decodeOutputs[answer](mistyped); !errors.As(err, &outputErr) || outputErr.Field != "score" {
		t.Errorf("a mistyped output: got %v", err)
	}

	asMap, err := decodeOutputs[map[string]any](mistyped)
	if err != nil || asMap["score"] != "high" {
		t.Errorf("map outputs are taken as they are: %v, %v", asMap, err)
	}

	// Without the exact form (an older server), the Struct is read instead.
	fallback, _ := structpb.NewStruct(map[string]any{"answer": "Paris", "score": 0.5})
	if got, err := decodeOutputs[answer](exactJSON("", fallback)); err != nil || got.Score != 0.5 {
		t.Errorf("the Struct fallback: %+v, %v", got, err)
	}
}

type ordered struct {
	Zeta  int            `json:"zeta"`
	Alpha float64        `json:"alpha"`
	Mid   map[string]any `json:"mid"`
}

func TestInputsAreSentAsExactJSONInFieldOrder(t *testing.T) {
	text, err := toJSONObject(ordered{Zeta: 1, Alpha: 2.5, Mid: map[string]any{"y": 1}}, "inputs")
	if err != nil || text != `{"zeta":1,"alpha":2.5,"mid":{"y":1}}` {
		t.Fatalf("toJSONObject = %s, %v", text, err)
	}
	if _, err := toJSONObject([]int{1}, "inputs"); err == nil {
		t.Errorf("a list is not an object of inputs")
	}
	if text, err := toJSONObject(nil, "inputs"); err != nil || text != "{}" {
		t.Errorf("nil inputs: %s, %v", text, err)
	}
}

type place struct {
	Zeta  string    `json:"zeta"`
	Alpha int       `json:"alpha"`
	When  time.Time `json:"when"`
}

func TestObjectSchemasKeepFieldOrderAndTimesAreDatetimes(t *testing.T) {
	spec := typeSpecOf(reflect.TypeFor[place]())
	want := `{"properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"},"when":{"format":"date-time","type":"string"}},"required":["zeta","alpha","when"],"title":"place","type":"object"}`
	if spec.GetJsonSchema() != want {
		t.Errorf("schema = %s", spec.GetJsonSchema())
	}
	if typeSpecOf(reflect.TypeFor[time.Time]()).GetKind().String() != "TYPE_KIND_DATETIME" {
		t.Errorf("time.Time is a datetime")
	}
}
