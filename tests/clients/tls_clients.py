"""Third-party clients over TLS against a running `scancer serve` (run by tests/integration/tls.rs,
in the venv `cargo xtask setup` makes): tritonclient's HTTP client (ssl=True, the test CA), its
gRPC client (ssl=True, root_certificates) and TorchServe's gRPC inference API through stubs from
proto/ on a grpcio secure channel; each checks readiness and infers one patch. Without the CA
each is refused. Prints one JSON object of what the clients got.

    python tls_clients.py HTTPS_PORT GRPC_PORT CA_PEM PROTO_DIR PATCH
"""

import json
import ssl
import subprocess
import sys
import tempfile

MODEL = "pcam"


def triton(module, url, ca, image, **ssl_options):
    import numpy as np

    client = module.InferenceServerClient(url, ssl=True, **ssl_options)
    tensor = module.InferInput("input__0", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([image], dtype=np.object_))
    result = client.infer(MODEL, [tensor])
    return {
        "ready": client.is_server_ready(),
        "probabilities": result.as_numpy("probabilities").astype(float).tolist(),
    }


def stubs(port, ca, proto_dir, image):
    import grpc

    out = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={out}",
                    f"--grpc_python_out={out}", f"{proto_dir}/torchserve_inference.proto",
                    f"{proto_dir}/google/rpc/status.proto"], check=True)
    sys.path.insert(0, out)
    import torchserve_inference_pb2 as ts
    import torchserve_inference_pb2_grpc as ts_grpc
    from google.protobuf import empty_pb2

    credentials = grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read())
    stub = ts_grpc.InferenceAPIsServiceStub(grpc.secure_channel(f"127.0.0.1:{port}", credentials))
    got = {
        "ping": stub.Ping(empty_pb2.Empty()).health,
        "prediction": stub.Predictions(ts.PredictionsRequest(model_name=MODEL, input={"data": image})).prediction.decode(),
    }
    # A channel that does not trust the CA never gets an answer.
    untrusted = ts_grpc.InferenceAPIsServiceStub(
        grpc.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials()))
    try:
        untrusted.Ping(empty_pb2.Empty(), timeout=10)
        got["untrusted"] = "answered"
    except grpc.RpcError as e:
        got["untrusted"] = e.code().name
    return got


def main():
    if sys.argv[1] == "stubs":
        port, ca, proto_dir, patch = sys.argv[2:6]
        print(json.dumps(stubs(port, ca, proto_dir, open(patch, "rb").read())))
        return
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http

    https_port, grpc_port, ca, proto_dir, patch = sys.argv[1:6]
    image = open(patch, "rb").read()
    context = ssl.create_default_context(cafile=ca)
    got = {
        "http": triton(triton_http, f"127.0.0.1:{https_port}", ca, image,
                       ssl_context_factory=lambda: context),
        "grpc": triton(triton_grpc, f"127.0.0.1:{grpc_port}", ca, image,
                       root_certificates=ca),
    }
    # The stubs run in a process of their own (see v2_and_torchserve_clients.py).
    got["torchserve"] = json.loads(subprocess.run(
        [sys.executable, __file__, "stubs", grpc_port, ca, proto_dir, patch],
        check=True, capture_output=True, text=True).stdout)
    print(json.dumps(got))


if __name__ == "__main__":
    main()
