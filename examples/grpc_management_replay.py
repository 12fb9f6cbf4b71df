"""One workflow through TorchServe's gRPC management API (developer script, run by
interop_torchserve.py --only-grpc-management with a Python that has grpcio-tools, such as the venv
`cargo xtask setup` makes): stubs generated from proto/torchserve_management.proto, the same calls
to whichever server listens on PORT. Prints [call, status code, msg or details] per call, as JSON.

    python examples/grpc_management_replay.py PORT PROTO_DIR
"""

import json
import subprocess
import sys
import tempfile

import grpc


def main():
    port, proto_dir = sys.argv[1:3]
    out = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={out}",
                    f"--grpc_python_out={out}", f"{proto_dir}/torchserve_management.proto"], check=True)
    sys.path.insert(0, out)
    import torchserve_management_pb2 as m
    import torchserve_management_pb2_grpc as m_grpc

    stub = m_grpc.ManagementAPIsServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    calls = [
        ("register 1.0", stub.RegisterModel, m.RegisterModelRequest(url="pcam.mar", initial_workers=1, synchronous=True)),
        ("register 2.0", stub.RegisterModel,
         m.RegisterModelRequest(url="pcam-2.0.mar", initial_workers=1, synchronous=True)),
        ("register again", stub.RegisterModel, m.RegisterModelRequest(url="pcam.mar", synchronous=True)),
        ("register missing", stub.RegisterModel, m.RegisterModelRequest(url="missing.mar")),
        ("list", stub.ListModels, m.ListModelsRequest()),
        ("list limit 1", stub.ListModels, m.ListModelsRequest(limit=1)),
        ("scale 2.0", stub.ScaleWorker,
         m.ScaleWorkerRequest(model_name="pcam", model_version="2.0", min_worker=2, max_worker=2, synchronous=True)),
        ("scale unknown", stub.ScaleWorker, m.ScaleWorkerRequest(model_name="nope", min_worker=1)),
        ("set-default 2.0", stub.SetDefault, m.SetDefaultRequest(model_name="pcam", model_version="2.0")),
        ("set-default 9.9", stub.SetDefault, m.SetDefaultRequest(model_name="pcam", model_version="9.9")),
        ("describe unknown", stub.DescribeModel, m.DescribeModelRequest(model_name="nope")),
        ("unregister default", stub.UnregisterModel, m.UnregisterModelRequest(model_name="pcam", model_version="2.0")),
        ("unregister 1.0", stub.UnregisterModel, m.UnregisterModelRequest(model_name="pcam", model_version="1.0")),
        ("unregister last", stub.UnregisterModel, m.UnregisterModelRequest(model_name="pcam")),
        ("list empty", stub.ListModels, m.ListModelsRequest()),
    ]
    answers = []
    for name, rpc, request in calls:
        try:
            answers.append([name, "OK", rpc(request, timeout=120).msg])
        except grpc.RpcError as e:
            answers.append([name, e.code().name, e.details()])
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
