"""A protoc plugin that runs grpcio-tools' built-in grpc_python generator.

grpcio-tools ships the generator inside its protoc module but no plugin executable. buf needs a
plugin, so this script receives the CodeGeneratorRequest on stdin, hands the descriptors it carries
to ``grpc_tools.protoc`` and returns the files it wrote as a CodeGeneratorResponse on stdout.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features = plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        descriptors = descriptor_pb2.FileDescriptorSet(file=request.proto_file)
        (work / "in.pb").write_bytes(descriptors.SerializeToString())
        out = work / "out"
        out.mkdir()
        args = ["protoc", f"--descriptor_set_in={work / 'in.pb'}", f"--grpc_python_out={out}"]
        if protoc.main(args + list(request.file_to_generate)) != 0:
            response.error = "grpc_tools.protoc failed to generate the grpc stubs"
        else:
            for path in sorted(out.rglob("*.py")):
                generated = response.file.add()
                generated.name = str(path.relative_to(out))
                generated.content = path.read_text()
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
