//! What a model file holds, which decides the engine that runs it: TorchScript and AOTInductor
//! packages run in libtorch, ONNX in ONNX Runtime. Told by the file's name where it says (`.onnx`,
//! `.pt2`), else by its content, so a model saved under another name still loads.

use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelFormat {
    /// `torch.jit.save` (a zip of code and pickled constants): the legacy format.
    TorchScript,
    /// `torch._inductor.aoti_compile_and_package`: a `.pt2` zip holding a compiled shared library.
    AotInductor,
    /// `torch.onnx.export`: an ONNX ModelProto.
    Onnx,
    /// A `.pt2` that `torch.export.save` wrote: a program that still needs compiling.
    ExportedProgram,
}

impl std::fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelFormat::TorchScript => "TorchScript",
            ModelFormat::AotInductor => "AOTInductor",
            ModelFormat::Onnx => "ONNX",
            ModelFormat::ExportedProgram => "torch.export",
        })
    }
}

impl ModelFormat {
    /// The format of the model file at `path`, whose name (an archive member's, when `path` is a
    /// file unpacked from an archive) is `name`.
    pub(crate) fn of(path: &Path, name: &str) -> ModelFormat {
        let extension = Path::new(name)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("onnx") => return ModelFormat::Onnx,
            Some("pt2") => return zip_kind(path, true),
            _ => {}
        }
        let mut head = [0u8; 4];
        let read = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .unwrap_or(0);
        match &head[..read] {
            [b'P', b'K', ..] => zip_kind(path, false),
            // An ONNX ModelProto opens with field 1 (ir_version, a varint): tag 0x08.
            [0x08, ..] => ModelFormat::Onnx,
            _ => ModelFormat::TorchScript,
        }
    }

    /// Whether the engine can give gradients through this model (explanations need them).
    pub(crate) fn has_gradients(self) -> bool {
        self == ModelFormat::TorchScript
    }

    /// "an ONNX model", "a TorchScript model"...
    pub(crate) fn noun_with_article(self) -> String {
        let noun = self.noun();
        let article = if noun.starts_with(['A', 'O']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {noun}")
    }

    /// The platform KServe V2's model metadata names.
    pub(crate) fn platform(self) -> &'static str {
        match self {
            ModelFormat::TorchScript => "pytorch_torchscript",
            ModelFormat::AotInductor => "pytorch_aotinductor",
            ModelFormat::Onnx => "onnxruntime_onnx",
            ModelFormat::ExportedProgram => "pytorch_export",
        }
    }

    /// The platform and backend of Triton's model configuration, by Triton's names.
    pub(crate) fn triton(self) -> (&'static str, &'static str) {
        match self {
            ModelFormat::Onnx => ("onnxruntime_onnx", "onnxruntime"),
            _ => ("pytorch_libtorch", "pytorch"),
        }
    }

    /// How messages call a model of this format.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            ModelFormat::TorchScript => "TorchScript model",
            ModelFormat::AotInductor => "AOTInductor package",
            ModelFormat::Onnx => "ONNX model",
            ModelFormat::ExportedProgram => "torch.export program",
        }
    }
}

/// The instruction set an AOTInductor package's CPU kernels were compiled for (`AOTI_CPU_ISA` in
/// its metadata: "AVX2", "AVX512"...), where it says one.
pub(crate) fn package_isa(path: &Path) -> Option<String> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).ok()?).ok()?;
    let names: Vec<String> = zip
        .file_names()
        .filter(|n| n.contains("data/aotinductor/") && n.ends_with("_metadata.json"))
        .map(str::to_owned)
        .collect();
    names.iter().find_map(|name| {
        let mut text = String::new();
        zip.by_name(name)
            .ok()?
            .take(1 << 16)
            .read_to_string(&mut text)
            .ok()?;
        let metadata: serde_json::Value = serde_json::from_str(&text).ok()?;
        metadata["AOTI_CPU_ISA"]
            .as_str()
            .filter(|isa| !isa.is_empty())
            .map(str::to_owned)
    })
}

/// The CPU flags (from /proc/cpuinfo) an instruction set named as AOTInductor names it needs,
/// the first of them this CPU lacks.
pub(crate) fn missing_cpu_flag(isa: &str) -> Option<&'static str> {
    let needs: &[&'static str] = match isa.to_ascii_uppercase().as_str() {
        "AVX2" => &["avx2", "fma"],
        "AVX512" => &["avx512f", "avx512bw", "avx512vl", "avx512dq"],
        "AMX" | "AMX_TILE" => &["amx_tile"],
        _ => &[],
    };
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    if flags.is_empty() {
        return None;
    }
    needs.iter().copied().find(|n| !flags.contains(n))
}

/// An AOTInductor package unpacked into a new temporary folder (removed when dropped), for
/// libtorch's loader, which then leaves it alone: loaded, the model needs none of its files (its
/// library stays mapped), so the folder goes at once, and a process killed later leaves nothing
/// behind (the loader's own unpacking lives as long as the model).
pub(crate) fn unpack_package(path: &Path) -> std::io::Result<tempfile::TempDir> {
    let invalid =
        |e: zip::result::ZipError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path)?).map_err(invalid)?;
    let dir = tempfile::Builder::new().prefix("scancer-pt2-").tempdir()?;
    for k in 0..zip.len() {
        let mut entry = zip.by_index(k).map_err(invalid)?;
        let Some(name) = entry.enclosed_name() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "member {:?} would be written outside the package",
                    entry.name()
                ),
            ));
        };
        let target = dir.path().join(name);
        if entry.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::io::copy(&mut entry, &mut std::fs::File::create(&target)?)?;
    }
    Ok(dir)
}

/// The names inside a zip file, or none if it is not one.
fn zip_names(path: &Path) -> Vec<String> {
    std::fs::File::open(path)
        .ok()
        .and_then(|f| zip::ZipArchive::new(f).ok())
        .map(|z| z.file_names().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// What a zip file holds, by its names (read once): an AOTInductor package holds
/// `data/aotinductor/`; another PT2 archive (`archive_format` in its top folder) is a program not
/// yet compiled; any other zip is TorchScript, unless it is `named_pt2`, when the package loader
/// says what is wrong with it.
fn zip_kind(path: &Path, named_pt2: bool) -> ModelFormat {
    let names = zip_names(path);
    let compiled = names.iter().any(|n| n.contains("data/aotinductor/"));
    let pt2 = names
        .iter()
        .any(|n| n.rsplit('/').next() == Some("archive_format"));
    match (compiled, pt2) {
        (true, _) => ModelFormat::AotInductor,
        (false, true) => ModelFormat::ExportedProgram,
        (false, false) if named_pt2 => ModelFormat::AotInductor,
        (false, false) => ModelFormat::TorchScript,
    }
}

#[cfg(test)]
mod tests {
    use super::ModelFormat;
    use std::io::Write;

    fn zip_with(path: &std::path::Path, names: &[&str]) {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        for name in names {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(b"x").unwrap();
        }
        zip.finish().unwrap();
    }

    #[test]
    fn formats_are_told_by_name_then_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        zip_with(&at("ts.bin"), &["m/data.pkl", "m/code/__torch__.py"]);
        zip_with(
            &at("aoti.bin"),
            &["m/archive_format", "m/data/aotinductor/model/m.so"],
        );
        zip_with(
            &at("exported.pt2"),
            &["m/archive_format", "m/models/m.json"],
        );
        std::fs::write(at("model.bin"), b"\x08\x08\x12\x07pytorch").unwrap();
        std::fs::write(at("text.pt"), b"not a model").unwrap();
        let of = |name: &str| ModelFormat::of(&at(name), name);
        assert_eq!(of("ts.bin"), ModelFormat::TorchScript);
        assert_eq!(of("aoti.bin"), ModelFormat::AotInductor);
        assert_eq!(of("exported.pt2"), ModelFormat::ExportedProgram);
        assert_eq!(of("model.bin"), ModelFormat::Onnx);
        assert_eq!(of("text.pt"), ModelFormat::TorchScript);
        // The name decides first (an archive member is unpacked under another path).
        assert_eq!(
            ModelFormat::of(&at("text.pt"), "model.onnx"),
            ModelFormat::Onnx
        );
        assert_eq!(
            ModelFormat::of(&at("aoti.bin"), "x.pt2"),
            ModelFormat::AotInductor
        );
        assert!(ModelFormat::TorchScript.has_gradients());
        assert_eq!(super::package_isa(&at("aoti.bin")), None);
        assert!(!ModelFormat::Onnx.has_gradients());
    }

    #[test]
    fn a_package_says_its_instruction_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.pt2");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("m/archive_format", options).unwrap();
        zip.write_all(b"pt2").unwrap();
        zip.start_file("m/data/aotinductor/model/x.wrapper_metadata.json", options)
            .unwrap();
        zip.write_all(br#"{"AOTI_DEVICE_KEY": "cpu", "AOTI_CPU_ISA": "AVX512"}"#)
            .unwrap();
        zip.finish().unwrap();
        assert_eq!(super::package_isa(&path).as_deref(), Some("AVX512"));
        // An instruction set scancer does not know is not refused.
        assert_eq!(super::missing_cpu_flag("NEON9"), None);
    }
}
