package dspygrpc

import (
	pb "github.com/dspy-grpc/dspy-grpc/clients/go/gen/dspy_grpc/v1"
)

// Model is a model alias from the server's configuration ("dummy" is built in).
func Model(alias string) *pb.LMSpec {
	return &pb.LMSpec{Source: &pb.LMSpec_Model{Model: alias}}
}

// Scripted is a scripted LM carried in the request (DSPy's DummyLM): one reply per LM call, in
// order. A string reply is a raw completion; anything else (a struct or map) gives the output field
// values, rendered as the adapter expects. A reply that cannot be encoded becomes an empty one.
func Scripted(replies ...any) *pb.LMSpec {
	dummy := &pb.DummyLM{}
	for _, reply := range replies {
		dummy.Responses = append(dummy.Responses, scriptedReply(reply))
	}
	return &pb.LMSpec{Source: &pb.LMSpec_Dummy{Dummy: dummy}}
}

func scriptedReply(reply any) *pb.DummyResponse {
	if text, ok := reply.(string); ok {
		return &pb.DummyResponse{Reply: &pb.DummyResponse_Text{Text: text}}
	}
	fields, err := toJSONObject(reply, "scripted reply")
	if err != nil {
		return &pb.DummyResponse{}
	}
	return &pb.DummyResponse{Reply: &pb.DummyResponse_FieldsJson{FieldsJson: fields}}
}
