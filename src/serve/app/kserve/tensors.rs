//! A V2 request's one input tensor, read (from JSON, the binary tensor data extension or gRPC's
//! contents) and checked against the model's input: FP32 tensors as the model takes them, or BYTES
//! elements (image files) to decode.

use crate::engine::preprocess::Prepared;
use crate::serve::http::Request;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

/// The name of the one input tensor, as the model's metadata gives it.
pub(crate) const INPUT: &str = "input__0";

/// What is wrong with a request's input tensor (each a 400, as in Triton).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadTensor {
    #[error("the request's JSON is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the request has no \"inputs\" array")]
    NoInputs,
    #[error("expected exactly one input tensor, got {0}")]
    InputCount(usize),
    #[error("{0} raw_input_contents for one input")]
    RawContents(usize),
    #[error("the input has no \"shape\"")]
    NoShape,
    #[error("the input shape must be non-negative integers")]
    NegativeShape,
    #[error("the input has no \"name\" (the model's is {input:?})", input = INPUT)]
    NoName,
    #[error("the model has no input {0:?}: its input is {input:?}", input = INPUT)]
    UnknownInput(String),
    #[error(
        "datatype {0:?} does not match the model's input {input:?}: send FP32 tensors [N, {c}, {h}, {w}], or BYTES (base64 image files) [N]",
        input = INPUT, c = .1[0], h = .1[1], w = .1[2]
    )]
    Datatype(String, [usize; 3]),
    #[error("input shape {0:?} does not match the model's [N, {c}, {h}, {w}]", c = .1[0], h = .1[1], w = .1[2])]
    Shape(Vec<usize>, [usize; 3]),
    #[error("the input has {values} values but its shape {shape:?} needs {needed}")]
    ValueCount {
        values: usize,
        shape: Vec<usize>,
        needed: usize,
    },
    #[error("a BYTES input must have shape [N] with N images, got {0:?} for {1} values")]
    BytesShape(Vec<usize>, usize),
    #[error("the input's binary_data_size is {0} but {1} bytes follow the JSON header")]
    BinarySize(u64, usize),
    #[error("binary data follows the JSON header, but the input has no binary_data_size")]
    UndeclaredBinary,
    #[error("the input has no \"data\"")]
    NoData,
    #[error("the input has no \"data\" array")]
    NoDataArray,
    #[error("the input data must be finite numbers")]
    NotFinite,
    #[error("FP32 data must be numbers")]
    Fp32NotNumbers,
    #[error("BYTES data must be base64 strings")]
    BytesNotStrings,
    #[error("image {0}: not base64: {1}")]
    ImageNotBase64(usize, base64::DecodeError),
    #[error("element {0}: expected a base64 image (BYTES), as TorchServe's handler reads it")]
    ElementNotImage(usize),
    #[error("element {0}: not base64: {1}")]
    ElementNotBase64(usize, base64::DecodeError),
    #[error("{0} bytes of FP32 data is not a whole number of values")]
    Fp32Length(usize),
    #[error("BYTES data ends inside an element's length")]
    CutInLength,
    #[error("BYTES data ends inside an element")]
    CutInElement,
    #[error("Inference-Header-Content-Length {0:?} is not a length")]
    HeaderLength(String),
    #[error("Inference-Header-Content-Length {0} is longer than the body ({1} bytes)")]
    HeaderTooLong(usize, usize),
}

/// One input tensor as a request carries it, over REST (JSON, binary data) or gRPC.
pub(crate) struct Tensor {
    pub(crate) name: String,
    pub(crate) datatype: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Data,
}

/// A tensor's values.
pub(crate) enum Data {
    /// Little-endian bytes (the binary data extension, gRPC's raw_input_contents).
    Raw(Bytes),
    /// FP32 values, row-major.
    Fp32(Vec<f32>),
    /// BYTES elements (image files).
    Elements(Vec<Bytes>),
}

/// The request's one input tensor, read and checked but not yet decoded.
pub(crate) enum Input {
    /// FP32 tensors, one per image, as the model takes them.
    Tensors(Vec<Prepared>),
    /// Image files to decode and preprocess.
    Images(Vec<Bytes>),
}

impl Input {
    pub(crate) fn len(&self) -> usize {
        match self {
            Input::Tensors(t) => t.len(),
            Input::Images(i) => i.len(),
        }
    }
}

/// The one input of a model taking `[C, H, W]` images, checked: its name, datatype and shape, as
/// tensors for the model or images to decode.
pub(crate) fn input(input_shape: [usize; 3], tensor: Tensor) -> Result<Input, BadTensor> {
    let shape = tensor.shape;
    match tensor.name.as_str() {
        INPUT => {}
        "" => return Err(BadTensor::NoName),
        other => return Err(BadTensor::UnknownInput(other.to_string())),
    }
    let [c, h, w] = input_shape;
    match (tensor.datatype.as_str(), tensor.data) {
        ("FP32", data) => {
            if shape.len() != 4 || shape[1..] != [c, h, w] {
                return Err(BadTensor::Shape(shape, input_shape));
            }
            let numbers = match data {
                Data::Raw(bytes) => fp32_binary(&bytes)?,
                Data::Fp32(numbers) => numbers,
                Data::Elements(_) => return Err(BadTensor::Fp32NotNumbers),
            };
            if numbers.iter().any(|x| !x.is_finite()) {
                return Err(BadTensor::NotFinite);
            }
            let size = c * h * w;
            if numbers.len() != shape[0] * size {
                return Err(BadTensor::ValueCount {
                    values: numbers.len(),
                    needed: shape[0] * size,
                    shape,
                });
            }
            Ok(Input::Tensors(
                numbers
                    .chunks_exact(size.max(1))
                    .map(|chunk| Prepared {
                        data: chunk.to_vec(),
                    })
                    .collect(),
            ))
        }
        ("BYTES", data) => {
            let images = match data {
                Data::Raw(bytes) => bytes_binary(&bytes)?
                    .into_iter()
                    .map(|element| bytes.slice_ref(element))
                    .collect(),
                Data::Elements(images) => images,
                Data::Fp32(_) => return Err(BadTensor::BytesNotStrings),
            };
            if shape.len() != 1 || shape[0] != images.len() {
                return Err(BadTensor::BytesShape(shape, images.len()));
            }
            Ok(Input::Images(images))
        }
        (other, _) => Err(BadTensor::Datatype(other.to_string(), input_shape)),
    }
}

/// The REST request's one input tensor. `binary` is what follows the JSON header with the binary
/// tensor data extension.
pub(super) fn tensors(
    input_shape: [usize; 3],
    body: &Value,
    binary: &Bytes,
) -> Result<Input, BadTensor> {
    let inputs = body["inputs"].as_array().ok_or(BadTensor::NoInputs)?;
    let [json] = inputs.as_slice() else {
        return Err(BadTensor::InputCount(inputs.len()));
    };
    let shape: Vec<usize> = json["shape"]
        .as_array()
        .ok_or(BadTensor::NoShape)?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or(BadTensor::NegativeShape)?;
    let datatype = json["datatype"].as_str().unwrap_or("");
    let name = json["name"].as_str().unwrap_or("");
    let data = match json["parameters"]["binary_data_size"].as_u64() {
        Some(size) if size as usize == binary.len() => Data::Raw(binary.clone()),
        Some(size) => return Err(BadTensor::BinarySize(size, binary.len())),
        None if !binary.is_empty() => return Err(BadTensor::UndeclaredBinary),
        // The name is checked before the values are read.
        None if name != INPUT || (datatype != "FP32" && datatype != "BYTES") => {
            Data::Fp32(Vec::new())
        }
        None => {
            let mut flat = Vec::new();
            flatten(&json["data"], &mut flat)?;
            if datatype == "FP32" {
                Data::Fp32(
                    flat.iter()
                        .map(|v| v.as_f64().map(|x| x as f32))
                        .collect::<Option<Vec<f32>>>()
                        .ok_or(BadTensor::NotFinite)?,
                )
            } else {
                Data::Elements(
                    flat.iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let text = v.as_str().ok_or(BadTensor::BytesNotStrings)?;
                            base64::engine::general_purpose::STANDARD
                                .decode(text.trim())
                                .map(Bytes::from)
                                .map_err(|e| BadTensor::ImageNotBase64(i, e))
                        })
                        .collect::<Result<_, BadTensor>>()?,
                )
            }
        }
    };
    input(
        input_shape,
        Tensor {
            name: name.to_string(),
            datatype: datatype.to_string(),
            shape,
            data,
        },
    )
}

/// The images of a request in TorchServe's kservev2 envelope: its first input's BYTES, base64.
pub(super) fn envelope_images(body: &Value) -> Result<Vec<Bytes>, BadTensor> {
    let input = &body["inputs"][0];
    let data = input["data"].as_array().ok_or(BadTensor::NoDataArray)?;
    data.iter()
        .enumerate()
        .map(|(i, v)| {
            let text = v.as_str().ok_or(BadTensor::ElementNotImage(i))?;
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map(Bytes::from)
                .map_err(|e| BadTensor::ElementNotBase64(i, e))
        })
        .collect()
}

/// Row-major values of nested or flat `data`.
pub(super) fn flatten<'a>(data: &'a Value, out: &mut Vec<&'a Value>) -> Result<(), BadTensor> {
    match data {
        Value::Array(items) => {
            for item in items {
                flatten(item, out)?;
            }
            Ok(())
        }
        Value::Null => Err(BadTensor::NoData),
        v => {
            out.push(v);
            Ok(())
        }
    }
}

/// An FP32 tensor sent as binary data (the binary tensor data extension): little-endian values.
fn fp32_binary(bytes: &[u8]) -> Result<Vec<f32>, BadTensor> {
    if !bytes.len().is_multiple_of(4) {
        return Err(BadTensor::Fp32Length(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// A BYTES tensor sent as binary data: each element after its 4-byte little-endian length.
fn bytes_binary(bytes: &[u8]) -> Result<Vec<&[u8]>, BadTensor> {
    let mut elements = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or(BadTensor::CutInLength)?;
        let len = u32::from_le_bytes(*len) as usize;
        let element = tail.get(..len).ok_or(BadTensor::CutInElement)?;
        elements.push(element);
        rest = &tail[len..];
    }
    Ok(elements)
}

/// The JSON header and the binary data after it: the binary tensor data extension sends the header's
/// length in `Inference-Header-Content-Length`; without it, the whole body is JSON.
pub(super) fn split_body(request: &Request) -> Result<(Bytes, Bytes), BadTensor> {
    match request.header("inference-header-content-length") {
        None => Ok((request.body.clone(), Bytes::new())),
        Some(text) => {
            let len: usize = text
                .trim()
                .parse()
                .map_err(|_| BadTensor::HeaderLength(text.to_string()))?;
            if len > request.body.len() {
                return Err(BadTensor::HeaderTooLong(len, request.body.len()));
            }
            Ok((request.body.slice(..len), request.body.slice(len..)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, datatype: &str, shape: Vec<usize>, data: Data) -> Tensor {
        Tensor {
            name: name.into(),
            datatype: datatype.into(),
            shape,
            data,
        }
    }

    fn refused(t: Tensor) -> String {
        match input([1, 2, 2], t) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn messages_as_clients_read_them() {
        assert_eq!(
            refused(tensor(
                "",
                "FP32",
                vec![1, 1, 2, 2],
                Data::Fp32(vec![0.0; 4])
            )),
            "the input has no \"name\" (the model's is \"input__0\")"
        );
        assert_eq!(
            refused(tensor("x", "FP32", vec![], Data::Fp32(vec![]))),
            "the model has no input \"x\": its input is \"input__0\""
        );
        assert_eq!(
            refused(tensor(INPUT, "INT8", vec![1], Data::Fp32(vec![]))),
            "datatype \"INT8\" does not match the model's input \"input__0\": send FP32 tensors [N, 1, 2, 2], or BYTES (base64 image files) [N]"
        );
        assert_eq!(
            refused(tensor(INPUT, "FP32", vec![1, 3, 2, 2], Data::Fp32(vec![]))),
            "input shape [1, 3, 2, 2] does not match the model's [N, 1, 2, 2]"
        );
        assert_eq!(
            refused(tensor(
                INPUT,
                "FP32",
                vec![2, 1, 2, 2],
                Data::Fp32(vec![0.0; 4])
            )),
            "the input has 4 values but its shape [2, 1, 2, 2] needs 8"
        );
        assert_eq!(
            refused(tensor(
                INPUT,
                "BYTES",
                vec![2],
                Data::Raw(Bytes::from_static(&[9, 0]))
            )),
            "BYTES data ends inside an element's length"
        );
        assert!(matches!(
            input(
                [1, 2, 2],
                tensor(INPUT, "FP32", vec![1, 1, 2, 2], Data::Fp32(vec![0.5; 4]))
            ),
            Ok(Input::Tensors(t)) if t.len() == 1
        ));
    }
}
