// A model for inference, for src/lib.rs: a TorchScript module or an AOTInductor package (.pt2).
// tch 0.26 exposes neither torch::jit::optimize_for_inference (freezing, conv/batch-norm folding,
// oneDNN prepacking) nor c10::InferenceMode, which together make CPU inference several times faster,
// nor AOTInductor's package loader; this small shim does. Tensors cross the boundary as tch does
// it: pointers to heap-allocated at::Tensor.

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace {

// As scancer_torch_abi::format.
constexpr int kTorchScript = 0;
constexpr int kAotiPackage = 1;
// As the ABI's model_load: the device an AOTInductor package was compiled for.
constexpr int kAsCompiled = -2;

struct Model {
  // Exactly one of the two.
  std::optional<torch::jit::Module> module;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> package;
  c10::Device device;
};

c10::Device device_of(int device) {
  return device < 0 ? c10::Device(c10::kCPU) : c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device));
}

// An AOTInductor package runs only on the kind of device it was compiled for (its metadata says
// which): `device` is checked against it, or (kAsCompiled) taken from it.
//
// One package loads at a time: libtorch 2.13's loader is not safe to run on two threads at once
// (lanes loading side by side corrupted the heap about once in a hundred runs, in its metadata's
// JSON parser while another thread built a loader).
Model* load_package(const std::string& path, int device) {
  static std::mutex loading;
  std::lock_guard<std::mutex> one_at_a_time(loading);
  auto metadata = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(path, "model");
  std::string compiled = metadata.count("AOTI_DEVICE_KEY") ? metadata["AOTI_DEVICE_KEY"] : "cpu";
  bool on_cuda = compiled == "cuda";
  if (device == kAsCompiled) {
    device = on_cuda ? 0 : -1;
  }
  if (on_cuda != (device >= 0)) {
    throw std::runtime_error("this AOTInductor package was compiled for " + compiled + ", and runs only there (asked: " +
                             (device >= 0 ? "cuda" : "cpu") + "); compile it for that device, or choose --device " +
                             (on_cuda ? "cuda" : "cpu"));
  }
  auto loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
      path, "model", false, 1, static_cast<c10::DeviceIndex>(device < 0 ? -1 : device));
  return new Model{std::nullopt, std::move(loader), device_of(device)};
}

char* copy_message(const char* what) { return strdup(what ? what : "unknown libtorch error"); }

}  // namespace

extern "C" {

// Loads `path`, a TorchScript file or (format kAotiPackage) an AOTInductor package, onto the CPU
// (device -1) or CUDA device `device` (kAsCompiled: where the package was compiled for); a module
// in eval mode, with `optimize` also frozen and optimised for inference. On failure returns null
// and sets `*error` (free it with scancer_free_error); `*optimize_error` is set when only the
// optimisation failed (the plain module is returned).
void* scancer_model_load(const char* path, int format, int device, int optimize, char** error, char** optimize_error) {
  *error = nullptr;
  *optimize_error = nullptr;
  try {
    if (format == kAotiPackage) {
      return load_package(std::string(path), device);
    }
    if (format != kTorchScript) {
      *error = copy_message(("unknown model format " + std::to_string(format)).c_str());
      return nullptr;
    }
    c10::Device dev = device_of(device);
    torch::jit::Module module = torch::jit::load(std::string(path), dev);
    module.eval();
    if (optimize) {
      try {
        module = torch::jit::optimize_for_inference(module);
      } catch (const std::exception& e) {
        *optimize_error = copy_message(e.what());
      }
    }
    return new Model{std::move(module), nullptr, dev};
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
    if (m->package) {
      std::vector<at::Tensor> outs = m->package->run({x});
      if (outs.empty()) {
        *error = copy_message("the model returned no tensor");
        return nullptr;
      }
      return new at::Tensor(outs[0].to(at::kCPU).to(at::kFloat).contiguous());
    }
    c10::IValue out = m->module->forward({x});
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
    if (!m->module) {
      *error = copy_message("explanations need gradients, which an AOTInductor package does not give");
      return nullptr;
    }
    c10::AutoGradMode grad(true);
    at::Tensor x = static_cast<at::Tensor*>(input)->to(m->device).detach().requires_grad_(true);
    c10::IValue out = m->module->forward({x});
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

// The CUDA device the model runs on, or -1 for the CPU.
int scancer_model_device(void* model) {
  const c10::Device& device = static_cast<Model*>(model)->device;
  return device.is_cuda() ? static_cast<int>(device.index() < 0 ? 0 : device.index()) : -1;
}

void scancer_model_free(void* model) { delete static_cast<Model*>(model); }

void scancer_free_error(char* error) { free(error); }

}  // extern "C"
