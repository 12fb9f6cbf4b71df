//! Where each input's files go (`--heatmap`, the exports, `--explain`, a segmentation model's
//! masks): a path with the output's extension is one file, for a single input; anything else is a
//! folder holding `<the input's path as given><suffix>` per input, so that no two inputs of a job
//! array, whichever shard runs them, share a name. Names are settled before any work, from every
//! input of the run.

use super::exports::Format;
use crate::inputs::{Item, Source};
use crate::records::OutputKind;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// A per-input output that cannot be named one file per input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NamingError {
    #[error("{flag} {} names one file, but there are {inputs} inputs: give a folder ({flag} out/) for one file per slide", .path.display())]
    OneFile {
        flag: &'static str,
        path: PathBuf,
        inputs: usize,
    },
    /// A file name whose extension is not one of the flag's (`--heatmap o.jpg`): neither a file
    /// it writes nor, without a trailing `/`, plainly a folder.
    #[error("{flag} {}: not a file name it writes (.{}) nor a folder: name the file .{}, or end a folder's path with /", .path.display(), .extensions.join(", ."), .extensions[0])]
    Extension {
        flag: &'static str,
        path: PathBuf,
        extensions: &'static [&'static str],
    },
    /// A folder's flag (`--wsinfer-out`) given an existing file.
    #[error("{flag} {}: a file, not a folder: name a folder to write the results in", .path.display())]
    NotAFolder { flag: &'static str, path: PathBuf },
    /// Two inputs (as displayed) whose files would be `name`.
    #[error("{flag}: the files of {first} and {second} would both be {}: give each slide once, by paths that differ", .name.display())]
    Collision {
        flag: &'static str,
        first: String,
        second: String,
        name: PathBuf,
    },
}

/// Each input's heatmap file (none without `--heatmap`): `--heatmap FILE.png` (or `.tif`) for a
/// single input, else `DIR/<the input's path>.heatmap.png` (`.heatmap.tif` when `tiff`).
pub(crate) fn heatmaps(
    path: Option<&Path>,
    tiff: bool,
    all: &[Item],
) -> Result<Vec<Option<PathBuf>>, NamingError> {
    let Some(path) = path else {
        return Ok(vec![None; all.len()]);
    };
    let suffix = if tiff { ".heatmap.tif" } else { ".heatmap.png" };
    per_input("--heatmap", path, all, &["png", "tif", "tiff"], suffix)
}

/// Each input's files of every export format asked for.
pub(crate) fn exports(
    asked: &[(Format, PathBuf)],
    all: &[Item],
) -> Result<Vec<Vec<(Format, PathBuf)>>, NamingError> {
    let mut targets = vec![Vec::new(); all.len()];
    for (format, path) in asked {
        let names = match format.wsinfer_folder() {
            Some(_) if path.exists() && !path.is_dir() => {
                return Err(NamingError::NotAFolder {
                    flag: format.flag(),
                    path: path.clone(),
                })
            }
            Some(folder) => by_stem(format.flag(), &path.join(folder), all, format.suffix())?,
            None => per_input(
                format.flag(),
                path,
                all,
                format.extensions(),
                format.suffix(),
            )?,
        };
        for (target, name) in targets.iter_mut().zip(names) {
            target.extend(name.map(|n| (*format, n)));
        }
    }
    Ok(targets)
}

/// Each input's explanation (none without `--explain DIR`): `DIR/<the input's path>.explain.png`.
pub(crate) fn explanations(
    dir: Option<&Path>,
    all: &[Item],
) -> Result<Vec<Option<PathBuf>>, NamingError> {
    match dir {
        Some(dir) => per_input("--explain", &dir.join(""), all, &[], ".explain.png"),
        None => Ok(vec![None; all.len()]),
    }
}

/// A segmentation model's stitched masks: `DIR/<the input's path>.mask.tif`; none for a model of
/// another kind.
pub(crate) fn masks(
    dir: &Path,
    items: &[Item],
    kind: OutputKind,
) -> Result<Option<Vec<Option<PathBuf>>>, NamingError> {
    (kind == OutputKind::Segmentation)
        .then(|| per_input("--mask-dir", &dir.join(""), items, &[], ".mask.tif"))
        .transpose()
}

/// One file per input for a per-input output: `path` itself for a single input when it has one of
/// `extensions`, else `path/<the input's path><suffix>`, mirroring the path as given; none for an
/// input that could not be listed.
fn per_input(
    flag: &'static str,
    path: &Path,
    all: &[Item],
    extensions: &'static [&'static str],
    suffix: &str,
) -> Result<Vec<Option<PathBuf>>, NamingError> {
    let said_folder = path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/');
    let file = path.extension().is_some_and(|e| {
        extensions
            .iter()
            .any(|x| e.eq_ignore_ascii_case(std::ffi::OsStr::new(x)))
    });
    // `o.jpg` is neither: made a folder, it would surprise whoever meant a file.
    if !said_folder && !file && path.extension().is_some() && !extensions.is_empty() {
        return Err(NamingError::Extension {
            flag,
            path: path.to_path_buf(),
            extensions,
        });
    }
    let folder = said_folder || !file;
    if !folder {
        if all.len() > 1 {
            return Err(NamingError::OneFile {
                flag,
                path: path.to_path_buf(),
                inputs: all.len(),
            });
        }
        return Ok(vec![Some(path.to_path_buf()); all.len()]);
    }
    let mut seen: HashMap<PathBuf, &str> = HashMap::new();
    let mut names = Vec::with_capacity(all.len());
    for item in all {
        let name = match item {
            Ok(input) => {
                let mut rel = match &input.source {
                    Source::File(path) => mirrored(path),
                    // The folder of a series, or the file it was named by.
                    Source::Dicom(_) => mirrored(Path::new(&input.display)),
                    Source::Stdin => PathBuf::from("stdin"),
                }
                .into_os_string();
                rel.push(suffix);
                Some(claim(&mut seen, flag, path.join(rel), &input.display)?)
            }
            Err(_) => None,
        };
        names.push(name);
    }
    Ok(names)
}

/// `name` for the input shown as `display`, unless another input has it.
fn claim<'a>(
    seen: &mut HashMap<PathBuf, &'a str>,
    flag: &'static str,
    name: PathBuf,
    display: &'a str,
) -> Result<PathBuf, NamingError> {
    match seen.insert(name.clone(), display) {
        Some(other) => Err(NamingError::Collision {
            flag,
            first: other.to_string(),
            second: display.to_string(),
            name,
        }),
        None => Ok(name),
    }
}

/// WSInfer's names: `folder/<stem><suffix>`, the stem being the slide's file name without its
/// extension (a DICOM series' folder name; `stdin`); two slides of one stem are a usage error.
fn by_stem(
    flag: &'static str,
    folder: &Path,
    all: &[Item],
    suffix: &str,
) -> Result<Vec<Option<PathBuf>>, NamingError> {
    let mut seen: HashMap<PathBuf, &str> = HashMap::new();
    let mut names = Vec::with_capacity(all.len());
    for item in all {
        let Ok(input) = item else {
            names.push(None);
            continue;
        };
        let stem = match &input.source {
            Source::Stdin => "stdin".into(),
            Source::File(_) | Source::Dicom(_) => Path::new(&input.display)
                .file_stem()
                .map_or_else(|| "slide".into(), |s| s.to_os_string()),
        };
        let mut file = stem;
        file.push(suffix);
        names.push(Some(claim(
            &mut seen,
            flag,
            folder.join(file),
            &input.display,
        )?));
    }
    Ok(names)
}

/// A path as given, made relative: `/data/a/x.svs` -> `data/a/x.svs`, `../x.svs` -> `__/x.svs`.
fn mirrored(path: &Path) -> PathBuf {
    let mut rel = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(name) => rel.push(name),
            Component::ParentDir => rel.push("__"),
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
        }
    }
    rel
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::{Input, Unlisted};

    fn file(path: &str) -> Item {
        Ok(Input {
            display: path.to_string(),
            source: Source::File(PathBuf::from(path)),
        })
    }

    fn names(found: Vec<Option<PathBuf>>) -> Vec<Option<String>> {
        found
            .into_iter()
            .map(|n| n.map(|p| p.to_string_lossy().into_owned()))
            .collect()
    }

    #[test]
    fn paths_are_mirrored_below_the_folder() {
        assert_eq!(
            mirrored(Path::new("/data/a/x.svs")),
            Path::new("data/a/x.svs")
        );
        assert_eq!(mirrored(Path::new("../x.svs")), Path::new("__/x.svs"));
        assert_eq!(mirrored(Path::new("./a/../b.tif")), Path::new("a/__/b.tif"));
    }

    #[test]
    fn a_folder_holds_one_file_per_input() {
        let all = [
            file("/data/a.svs"),
            file("b/c.tif"),
            Ok(Input {
                display: "-".into(),
                source: Source::Stdin,
            }),
            Err(Unlisted {
                display: "gone.svs".into(),
                message: "not found".into(),
            }),
        ];
        let found = heatmaps(Some(Path::new("maps")), false, &all).unwrap();
        assert_eq!(
            names(found),
            [
                Some("maps/data/a.svs.heatmap.png".into()),
                Some("maps/b/c.tif.heatmap.png".into()),
                Some("maps/stdin.heatmap.png".into()),
                None,
            ]
        );
        let found = heatmaps(Some(Path::new("maps")), true, &all[..1]).unwrap();
        assert_eq!(names(found), [Some("maps/data/a.svs.heatmap.tif".into())]);
    }

    #[test]
    fn a_path_with_the_extension_is_one_file_for_one_input() {
        let one = [file("a.svs")];
        let found = heatmaps(Some(Path::new("map.PNG")), false, &one).unwrap();
        assert_eq!(names(found), [Some("map.PNG".into())]);
        // A trailing slash makes it a folder, whatever its name.
        let found = heatmaps(Some(Path::new("map.png/")), false, &one).unwrap();
        assert_eq!(names(found), [Some("map.png/a.svs.heatmap.png".into())]);
        let two = [file("a.svs"), file("b.svs")];
        let e = heatmaps(Some(Path::new("map.png")), false, &two).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--heatmap map.png names one file, but there are 2 inputs: give a folder (--heatmap out/) for one file per slide"
        );
    }

    #[test]
    fn two_inputs_never_share_a_file() {
        let all = [file("a/x.svs"), file("./a/x.svs")];
        let e = exports(&[(Format::GeoJson, PathBuf::from("out"))], &all).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--geojson: the files of a/x.svs and ./a/x.svs would both be out/a/x.svs.geojson: give each slide once, by paths that differ"
        );
    }

    #[test]
    fn each_export_has_its_own_flag_extensions_and_suffix() {
        let all = [file("s.svs")];
        let asked = [
            (Format::GeoJson, PathBuf::from("s.json")),
            (Format::AsapXml, PathBuf::from("out")),
            (Format::LesionsCsv, PathBuf::from("l.csv")),
        ];
        let found = exports(&asked, &all).unwrap();
        assert_eq!(
            found,
            [vec![
                (Format::GeoJson, PathBuf::from("s.json")),
                (Format::AsapXml, PathBuf::from("out/s.svs.xml")),
                (Format::LesionsCsv, PathBuf::from("l.csv")),
            ]]
        );
        let two = [file("a.svs"), file("b.svs")];
        let e = exports(&[(Format::LesionsCsv, PathBuf::from("l.csv"))], &two).unwrap_err();
        assert!(
            e.to_string().starts_with("--lesions l.csv names one file"),
            "{e}"
        );
    }

    #[test]
    fn explanations_and_masks_always_go_to_a_folder() {
        let one = [file("p.png")];
        let found = explanations(Some(Path::new("why.png")), &one).unwrap();
        assert_eq!(names(found), [Some("why.png/p.png.explain.png".into())]);
        assert_eq!(explanations(None, &one).unwrap(), [None]);
        let found = masks(Path::new("masks"), &one, OutputKind::Segmentation).unwrap();
        assert_eq!(names(found.unwrap()), [Some("masks/p.png.mask.tif".into())]);
        assert_eq!(
            masks(Path::new("masks"), &one, OutputKind::Binary),
            Ok(None)
        );
    }
}
