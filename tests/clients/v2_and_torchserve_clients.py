"""Third-party clients against a running `scancer serve` (run by tests/integration/serve.rs, in the
venv `cargo xtask setup` makes): tritonclient's HTTP client with its defaults (binary tensor data)
and its gRPC client, each doing readiness, metadata and inference on the patches; and TorchServe's
gRPC inference API through stubs that grpcio-tools generates from proto/. Prints one JSON object of
what the clients got; the Rust test compares it with `scancer predict` and `/predictions`.

    python v2_and_torchserve_clients.py HTTP_PORT GRPC_PORT TOKEN PROTO_DIR PATCH...

The stubs run in a process of their own: tritonclient registers Triton's `inference.*` messages in
protobuf's default pool, and the stubs from proto/kserve_v2.proto register the same names.
"""

import json
import subprocess
import sys
import tempfile

MODEL = "pcam-classification"


def v2(client_module, url, token, images):
    import numpy as np
    import tritonclient.grpc as triton_grpc
    from tritonclient.utils import InferenceServerException

    # A dict of its own: tritonclient's HTTP client adds its headers (int values) to the caller's.
    headers = {"authorization": f"Bearer {token}"}
    client = client_module.InferenceServerClient(url)
    got = {
        "live": client.is_server_live(headers=headers),
        "ready": client.is_server_ready(headers=headers),
        "model_ready": client.is_model_ready(MODEL, headers=headers),
    }
    metadata = client.get_model_metadata(MODEL, headers=headers)
    if client_module is triton_grpc:
        got["metadata"] = {
            "name": metadata.name,
            "versions": list(metadata.versions),
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in metadata.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in metadata.outputs],
        }
    else:
        got["metadata"] = metadata
        got["config"] = client.get_model_config(MODEL, headers=headers)
    tensor = client_module.InferInput("input__0", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_))
    result = client.infer(MODEL, [tensor], headers=headers)
    got["probabilities"] = result.as_numpy("probabilities").astype(float).tolist()
    if client_module is not triton_grpc:
        # Triton's statistics extension (over REST; its gRPC RPC is Triton's, not KServe's).
        got["statistics"] = client.get_inference_statistics(MODEL, headers=headers)
    got["class"] = result.as_numpy("class").tolist()
    # Without credentials: refused.
    try:
        client.infer(MODEL, [tensor])
        got["without_credentials"] = "answered"
    except InferenceServerException as e:
        got["without_credentials"] = str(e.status())
    return got


def torchserve(port, token, proto_dir, images):
    import grpc

    out = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={out}",
                    f"--grpc_python_out={out}", f"{proto_dir}/torchserve_inference.proto",
                    f"{proto_dir}/google/rpc/status.proto",
                    f"{proto_dir}/kserve_v2.proto"], check=True)
    sys.path.insert(0, out)
    import kserve_v2_pb2
    import kserve_v2_pb2_grpc
    import torchserve_inference_pb2 as ts
    import torchserve_inference_pb2_grpc as ts_grpc
    from google.protobuf import empty_pb2

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = ts_grpc.InferenceAPIsServiceStub(channel)
    auth = [("authorization", f"Bearer {token}")]
    got = {"ping": stub.Ping(empty_pb2.Empty()).health}
    got["predictions"] = [
        stub.Predictions(ts.PredictionsRequest(model_name=MODEL, input={"data": image}), metadata=auth)
        .prediction.decode()
        for image in images
    ]
    got["stream"] = [a.prediction.decode() for a in stub.StreamPredictions(
        ts.PredictionsRequest(model_name=MODEL, model_version="1.0", input={"body": images[0]}), metadata=auth)]
    errors = {}
    for name, call in {
        "unauthenticated": lambda: stub.Predictions(ts.PredictionsRequest(model_name=MODEL, input={"data": images[0]})),
        "unknown_model": lambda: stub.Predictions(ts.PredictionsRequest(model_name="nope", input={"data": images[0]}), metadata=auth),
        "not_an_image": lambda: stub.Predictions(ts.PredictionsRequest(model_name=MODEL, input={"data": b"hello"}), metadata=auth),
        "no_data": lambda: stub.Predictions(ts.PredictionsRequest(model_name=MODEL, input={"x": b"1"}), metadata=auth),
        # Over serve's --max-request-size (6553500 by default), as HTTP refuses it.
        "too_large": lambda: stub.Predictions(
            ts.PredictionsRequest(model_name=MODEL, input={"data": b"x" * 7_000_000}), metadata=auth),
    }.items():
        try:
            call()
            errors[name] = "answered"
        except grpc.RpcError as e:
            errors[name] = [e.code().name, e.details()]
    got["errors"] = errors
    # The KServe proto, through its own generated stub (what a non-Triton V2 client does).
    v2_stub = kserve_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
    got["kserve_live"] = v2_stub.ServerLive(kserve_v2_pb2.ServerLiveRequest()).live
    return got


def main():
    if sys.argv[1] == "stubs":
        grpc_port, token, proto_dir = sys.argv[2:5]
        images = [open(p, "rb").read() for p in sys.argv[5:]]
        print(json.dumps(torchserve(grpc_port, token, proto_dir, images)))
        return
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http

    http_port, grpc_port, token, proto_dir = sys.argv[1:5]
    patches = sys.argv[5:]
    images = [open(p, "rb").read() for p in patches]
    stubs = subprocess.run([sys.executable, __file__, "stubs", grpc_port, token, proto_dir, *patches],
                           check=True, capture_output=True, text=True).stdout
    print(json.dumps({
        "http": v2(triton_http, f"127.0.0.1:{http_port}", token, images),
        "grpc": v2(triton_grpc, f"127.0.0.1:{grpc_port}", token, images),
        "torchserve": json.loads(stubs),
    }))


if __name__ == "__main__":
    main()
