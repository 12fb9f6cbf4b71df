"""TorchServe's gRPC management API and StreamPredictions2 against a running `scancer serve` (run by
tests/integration/model_store.rs, in the venv `cargo xtask setup` makes), through stubs that
grpcio-tools generates from proto/: the register, scale, set-default, describe, list and
unregister workflow, the errors, and a stream of predictions with a failure in the middle. Prints
one JSON object of what the stubs got.

    python management_clients.py INFERENCE_PORT MANAGEMENT_PORT MANAGEMENT_KEY INFERENCE_KEY PROTO_DIR PATCH
"""

import json
import subprocess
import sys
import tempfile

import grpc


def call(got, name, rpc, request, metadata):
    try:
        got[name] = rpc(request, metadata=metadata).msg
    except grpc.RpcError as e:
        got[name] = [e.code().name, e.details()]


def main():
    inference_port, management_port, management_key, inference_key, proto_dir, patch = sys.argv[1:7]
    out = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={out}",
                    f"--grpc_python_out={out}", f"{proto_dir}/torchserve_management.proto",
                    f"{proto_dir}/torchserve_inference.proto", f"{proto_dir}/google/rpc/status.proto"],
                   check=True)
    sys.path.insert(0, out)
    import torchserve_inference_pb2 as ts
    import torchserve_inference_pb2_grpc as ts_grpc
    import torchserve_management_pb2 as m
    import torchserve_management_pb2_grpc as m_grpc

    stub = m_grpc.ManagementAPIsServiceStub(grpc.insecure_channel(f"127.0.0.1:{management_port}"))
    auth = [("authorization", f"Bearer {management_key}")]
    got = {}
    call(got, "register", stub.RegisterModel,
         m.RegisterModelRequest(url="pcam-2.0.mar", initial_workers=1, synchronous=True), auth)
    call(got, "scale", stub.ScaleWorker,
         m.ScaleWorkerRequest(model_name="pcam", model_version="2.0", min_worker=2, synchronous=True), auth)
    call(got, "set_default", stub.SetDefault, m.SetDefaultRequest(model_name="pcam", model_version="2.0"), auth)
    call(got, "describe", stub.DescribeModel, m.DescribeModelRequest(model_name="pcam", model_version="2.0"), auth)
    call(got, "list", stub.ListModels, m.ListModelsRequest(), auth)
    call(got, "list_paged", stub.ListModels, m.ListModelsRequest(limit=1), auth)
    call(got, "unregister", stub.UnregisterModel,
         m.UnregisterModelRequest(model_name="pcam", model_version="1.0"), auth)
    errors = {}
    call(errors, "unknown", stub.DescribeModel, m.DescribeModelRequest(model_name="nope"), auth)
    call(errors, "no_key", stub.ListModels, m.ListModelsRequest(), [])
    call(errors, "inference_key", stub.ListModels, m.ListModelsRequest(),
         [("authorization", f"Bearer {inference_key}")])
    call(errors, "bad_workers", stub.ScaleWorker,
         m.ScaleWorkerRequest(model_name="pcam", min_worker=3, max_worker=2), auth)
    call(errors, "not_an_archive", stub.RegisterModel, m.RegisterModelRequest(url="broken.mar"), auth)
    call(errors, "slash", stub.DescribeModel, m.DescribeModelRequest(model_name="a/b"), auth)
    got["errors"] = errors

    # StreamPredictions2: answers in order, a failure answered in the stream, the stream going on.
    inference = ts_grpc.InferenceAPIsServiceStub(grpc.insecure_channel(f"127.0.0.1:{inference_port}"))
    image = open(patch, "rb").read()
    requests = [
        ts.PredictionsRequest(model_name="pcam", input={"data": image}, sequence_id="seq-1"),
        ts.PredictionsRequest(model_name="nope", input={"data": image}),
        ts.PredictionsRequest(model_name="pcam", input={"data": image}),
    ]
    got["stream2"] = [
        {"prediction": a.prediction.decode(), "sequence_id": a.sequence_id,
         "status": [a.status.code, a.status.message] if a.HasField("status") else None}
        for a in inference.StreamPredictions2(
            iter(requests), metadata=[("authorization", f"Bearer {inference_key}")])
    ]
    print(json.dumps(got))


if __name__ == "__main__":
    main()
