//! The engine as scancer sees it: opened with libloading, called only through the C ABI.

use scancer_torch_abi::{op, Api, Entry, ABI_VERSION, ENTRY, LIBRARY};
use std::ffi::{c_void, CStr, CString};
use std::path::PathBuf;
use std::ptr::null_mut;

/// `cargo test` builds the engine beside this test, in the target folder's `deps/`.
fn api() -> &'static Api {
    let exe = std::env::current_exe().unwrap();
    let path: PathBuf = exe.parent().unwrap().join(LIBRARY);
    let library = unsafe { libloading::Library::new(&path) }
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let entry = unsafe { library.get::<Entry>(ENTRY) }.unwrap();
    let api = unsafe { &*entry() };
    std::mem::forget(library);
    api
}

fn message(api: &Api, m: *mut std::ffi::c_char) -> String {
    assert!(!m.is_null(), "an error comes with a message");
    let text = unsafe { CStr::from_ptr(m) }.to_string_lossy().into_owned();
    unsafe { (api.message_free)(m) };
    text
}

fn model_path() -> CString {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/pcam-classification.pt");
    CString::new(root.to_str().unwrap()).unwrap()
}

/// Loads `path` on the CPU: the model, or the error message.
fn load(api: &Api, path: &CString, optimize: bool) -> Result<*mut c_void, String> {
    let (mut error, mut optimize_error) = (null_mut(), null_mut());
    let model = unsafe {
        (api.model_load)(
            path.as_ptr(),
            scancer_torch_abi::format::TORCHSCRIPT,
            -1,
            optimize as i32,
            &mut error,
            &mut optimize_error,
        )
    };
    if model.is_null() {
        return Err(message(api, error));
    }
    assert!(optimize_error.is_null(), "{}", message(api, optimize_error));
    Ok(model)
}

fn dims(api: &Api, t: *mut c_void) -> Vec<i64> {
    let mut d = [0i64; 8];
    let n = unsafe { (api.tensor_dims)(t, d.as_mut_ptr(), 8) };
    d[..n].to_vec()
}

#[test]
fn speaks_this_abi() {
    assert_eq!(api().abi_version, ABI_VERSION);
}

#[test]
fn loads_runs_and_post_processes_a_model() {
    let api = api();
    unsafe { (api.set_threads)(1) };
    let model = load(api, &model_path(), true).unwrap();
    let mut error = null_mut();
    let input = vec![0.25f32; 2 * 3 * 96 * 96];
    let shape = [2i64, 3, 96, 96];
    let out = unsafe { (api.model_forward)(model, input.as_ptr(), shape.as_ptr(), 4, &mut error) };
    assert!(!out.is_null(), "{}", message(api, error));
    assert_eq!(dims(api, out), [2, 1]);
    let p = unsafe { (api.tensor_apply)(out, op::SIGMOID, 0.0, &mut error) };
    assert!(!p.is_null());
    let (mut logits, mut probabilities) = ([0f32; 2], [0f32; 2]);
    assert_eq!(
        unsafe { (api.tensor_read)(out, logits.as_mut_ptr(), 2, &mut error) },
        0
    );
    assert_eq!(
        unsafe { (api.tensor_read)(p, probabilities.as_mut_ptr(), 2, &mut error) },
        0
    );
    // Same input, same answer; and the sigmoid is libtorch's.
    assert_eq!(logits[0], logits[1]);
    assert!((probabilities[0] - 1.0 / (1.0 + (-logits[0]).exp())).abs() < 1e-6);
    // A read into a buffer of the wrong size is an error, not an overrun.
    let mut short = [0f32; 1];
    assert_ne!(
        unsafe { (api.tensor_read)(p, short.as_mut_ptr(), 1, &mut error) },
        0
    );
    assert!(message(api, error).contains("2 values"));
    let unknown = unsafe { (api.tensor_apply)(out, 99, 0.0, &mut error) };
    assert!(unknown.is_null());
    assert!(message(api, error).contains("unknown tensor operation 99"));
    unsafe {
        (api.tensor_free)(p);
        (api.tensor_free)(out);
        (api.model_free)(model);
    }
}

#[test]
fn failures_are_messages() {
    let api = api();
    let missing = CString::new("/nonexistent/model.pt").unwrap();
    assert!(!load(api, &missing, true).unwrap_err().is_empty());
    let model = load(api, &model_path(), false).unwrap();
    // A wrong input shape is libtorch's error, caught.
    let input = vec![0f32; 3 * 5 * 5];
    let shape = [1i64, 3, 5, 5];
    let mut error = null_mut();
    let out = unsafe { (api.model_forward)(model, input.as_ptr(), shape.as_ptr(), 4, &mut error) };
    assert!(out.is_null());
    assert!(!message(api, error).is_empty());
    unsafe { (api.model_free)(model) };
}
