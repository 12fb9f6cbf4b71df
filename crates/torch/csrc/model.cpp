// A TorchScript module for inference, for src/lib.rs. tch 0.26 does not expose
// torch::jit::optimize_for_inference (freezing, conv/batch-norm folding, oneDNN prepacking) nor
// c10::InferenceMode, which together make CPU inference several times faster; this small shim does.
// Tensors cross the boundary as tch does it: pointers to heap-allocated at::Tensor.

#include <torch/script.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace {

struct Model {
  torch::jit::Module module;
  c10::Device device;
};

char* copy_message(const char* what) { return strdup(what ? what : "unknown libtorch error"); }

}  // namespace

extern "C" {

// Loads `path` onto the CPU (device < 0) or CUDA device `device`, in eval mode; with `optimize`, also
// frozen and optimised for inference. On failure returns null and sets `*error` (free it with
// scancer_free_error); `*optimize_error` is set when only the optimisation failed (the plain module
// is returned).
void* scancer_model_load(const char* path, int device, int optimize, char** error, char** optimize_error) {
  *error = nullptr;
  *optimize_error = nullptr;
  try {
    c10::Device dev = device < 0 ? c10::Device(c10::kCPU) : c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device));
    torch::jit::Module module = torch::jit::load(std::string(path), dev);
    module.eval();
    if (optimize) {
      try {
        module = torch::jit::optimize_for_inference(module);
      } catch (const std::exception& e) {
        *optimize_error = copy_message(e.what());
      }
    }
    return new Model{std::move(module), dev};
  } catch (const std::exception& e) {
    *error = copy_message(e.what());
    return nullptr;
  }
}

// Runs forward on `input` (an at::Tensor*) under InferenceMode; returns a new at::Tensor* holding the
// output as contiguous float32 on the CPU, or null with `*error` set.
void* scancer_model_forward(void* model, void* input, char** error) {
  *error = nullptr;
  try {
    auto* m = static_cast<Model*>(model);
    c10::InferenceMode guard;
    at::Tensor x = static_cast<at::Tensor*>(input)->to(m->device);
    c10::IValue out = m->module.forward({x});
    if (!out.isTensor()) {
      *error = copy_message(("the model returned " + out.tagKind() + ", not a tensor").c_str());
      return nullptr;
    }
    return new at::Tensor(out.toTensor().to(at::kCPU).to(at::kFloat).contiguous());
  } catch (const std::exception& e) {
    *error = copy_message(e.what());
    return nullptr;
  }
}

// The gradient of the sum over the batch of output column `target` (of a [N, K] output) with respect
// to `input` (an at::Tensor* of shape [N, ...]), with autograd on: what Integrated Gradients sums. The
// module must be the saved one, not frozen (freezing inlines weights into ops without autograd).
// Returns a new at::Tensor* of the input's shape, float32 on the CPU, or null with `*error` set.
void* scancer_model_gradient(void* model, void* input, long target, char** error) {
  *error = nullptr;
  try {
    auto* m = static_cast<Model*>(model);
    c10::AutoGradMode grad(true);
    at::Tensor x = static_cast<at::Tensor*>(input)->to(m->device).detach().requires_grad_(true);
    c10::IValue out = m->module.forward({x});
    if (!out.isTensor()) {
      *error = copy_message(("the model returned " + out.tagKind() + ", not a tensor").c_str());
      return nullptr;
    }
    at::Tensor y = out.toTensor();
    if (y.dim() != 2 || target < 0 || target >= y.size(1)) {
      *error = copy_message(("explanations need an output of [N, classes] and a target class in it; the output is " +
                             c10::str(y.sizes()) + " and the target " + std::to_string(target))
                                .c_str());
      return nullptr;
    }
    at::Tensor selected = y.select(1, target).sum();
    selected.backward();
    return new at::Tensor(x.grad().to(at::kCPU).to(at::kFloat).contiguous());
  } catch (const std::exception& e) {
    *error = copy_message(e.what());
    return nullptr;
  }
}

void scancer_model_free(void* model) { delete static_cast<Model*>(model); }

void scancer_free_error(char* error) { free(error); }

}  // extern "C"
