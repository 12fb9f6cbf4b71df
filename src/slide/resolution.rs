//! Which pyramid level a slide is read at, and how the rest of the way to the model's resolution is
//! resampled: from `--level`, from a target resolution (`--mpp`, `--magnification`, or the handler
//! configuration's training `mpp`) against the slide's own (OpenSlide's mpp properties, TIFF
//! XResolution/ResolutionUnit, PNG pHYs, or `--slide-mpp`). Also the scale from the grid that was
//! analysed back to level-0 pixels, which every coordinate a slide's results give is in.

/// Microns per pixel that a microscope scan can have: outside, a resolution tag is a screen or
/// editor default (72 dpi is 353 um/px), not the scanner's.
const PLAUSIBLE_MPP: std::ops::RangeInclusive<f64> = 0.01..=50.0;

/// A level within 1% of the target is read as it is: scanners' own levels are rarely exact
/// powers of two of level 0, and resampling by 0.2% only blurs.
const TOLERANCE: f64 = 0.01;

/// Microns per pixel at 10x, by the convention scanners follow (40x is 0.25 um/px): what
/// `--magnification` means on a slide that declares no objective power.
const MPP_AT_10X: f64 = 1.0;

/// One level of a slide's pyramid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Level {
    pub(crate) width: usize,
    pub(crate) height: usize,
    /// Level-0 pixels per pixel of this level.
    pub(crate) downsample: f64,
}

/// What a slide says about its own resolution.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pyramid {
    /// Level 0 first.
    pub(crate) levels: Vec<Level>,
    /// Microns per level-0 pixel, and where it was read ("openslide.mpp-x", "TIFF XResolution"...).
    pub(crate) mpp: Option<(f64, &'static str)>,
    /// The scan's objective power (OpenSlide's `openslide.objective-power`).
    pub(crate) objective: Option<f64>,
    /// Microns per pixel across and down, where they differ (`mpp` is their mean).
    pub(crate) axes: Option<(f64, f64)>,
}

/// A resolution a file declares: one number (the mean of its axes), and the axes apart where they
/// differ by more than 1 % (scancer analyses square pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Declared {
    pub(crate) mpp: (f64, &'static str),
    pub(crate) axes: Option<(f64, f64)>,
}

/// One rule for every reader: the mean of the two axes, and the axes where they differ.
pub(crate) fn across_and_down(
    ((x, source), (y, _)): ((f64, &'static str), (f64, &'static str)),
) -> Declared {
    let differ = (x - y).abs() > 0.01 * x.min(y);
    Declared {
        mpp: ((x + y) / 2.0, source),
        axes: differ.then_some((x, y)),
    }
}

impl Pyramid {
    /// A single-level image.
    pub(crate) fn flat(width: usize, height: usize, mpp: Option<(f64, &'static str)>) -> Pyramid {
        Pyramid {
            levels: vec![Level {
                width,
                height,
                downsample: 1.0,
            }],
            mpp,
            objective: None,
            axes: None,
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// `--level N`: that level, as it is.
    Level(u32),
    /// `--mpp UM`.
    Mpp(f64),
    /// `--magnification X`.
    Magnification(f64),
}

impl Target {
    /// The target `--level`, `--mpp` or `--magnification` ask for (the first given, in that order).
    pub(crate) fn from_flags(
        level: Option<u32>,
        mpp: Option<f64>,
        magnification: Option<f64>,
    ) -> Option<Target> {
        match (level, mpp, magnification) {
            (Some(level), _, _) => Some(Target::Level(level)),
            (_, Some(mpp), _) => Some(Target::Mpp(mpp)),
            (_, _, Some(x)) => Some(Target::Magnification(x)),
            _ => None,
        }
    }
}

/// How slides of a run are read.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct LevelChoice {
    /// None: the handler configuration's training mpp, else level 0.
    pub(crate) target: Option<Target>,
    /// The model's training resolution (handler configuration `input.mpp`).
    pub(crate) model_mpp: Option<f64>,
    /// `--slide-mpp`: the slide's level-0 resolution, for files that declare none (or an
    /// implausible one).
    pub(crate) slide_mpp: Option<f64>,
    /// `--override-slide-mpp`: `slide_mpp` also for files that declare a resolution.
    pub(crate) override_mpp: bool,
    /// The model's input: an image no larger is a patch, read as it is.
    pub(crate) patch: (usize, usize),
}

/// How one slide is read, and how its analysed pixels map back to level 0.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) level: u32,
    /// Resample the level to this size (None: read as it is).
    pub(crate) resample: Option<(usize, usize)>,
    /// The analysed image's size.
    pub(crate) size: (usize, usize),
    /// The slide's level-0 size.
    pub(crate) level0: (usize, usize),
    /// Level-0 pixels per analysed pixel, across and down.
    pub(crate) scale: (f64, f64),
    /// Microns per level-0 pixel, if known, and its source.
    pub(crate) mpp: Option<(f64, &'static str)>,
    /// Something the user should hear (the target could not be honoured exactly).
    pub(crate) note: Option<String>,
    /// A resolution the slide declares that `--override-slide-mpp` replaced: (declared, where).
    pub(crate) overridden: Option<(f64, &'static str)>,
    /// The declared resolution used was of pixels that are not square: microns across and down
    /// (the analysis used their mean).
    pub(crate) anisotropic: Option<(f64, f64)>,
}

impl Plan {
    /// Level-0 pixels per analysed pixel (the larger of the two axes', which differ by rounding).
    pub(crate) fn downsample(&self) -> f64 {
        self.scale.0.max(self.scale.1)
    }

    /// A coordinate of the analysed grid in level-0 pixels, across.
    pub(crate) fn x0(&self, x: usize) -> u64 {
        (x as f64 * self.scale.0).round() as u64
    }

    /// A coordinate of the analysed grid in level-0 pixels, down.
    pub(crate) fn y0(&self, y: usize) -> u64 {
        (y as f64 * self.scale.1).round() as u64
    }
}

/// Why a slide cannot be read at the level or resolution asked for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ResolutionError {
    /// A resolution tag that no scan has (`tag` names where it was read).
    #[error("{tag} says {mpp:.4} um per pixel, which no microscope scan has (a screen or editor default?): pass --slide-mpp with the scanner's resolution")]
    Implausible { tag: &'static str, mpp: f64 },
    /// A resolution is needed for `what` (said as "--mpp 0.5 was asked for"...), and none is known.
    #[error("{what}, but the slide declares no resolution (no mpp property, TIFF or PNG resolution): pass --slide-mpp with the scanner's microns per pixel, or --level")]
    Undeclared { what: String },
    #[error("--level {level}: the slide has levels 0 to {last}")]
    NoSuchLevel { level: u32, last: usize },
    #[error("{asked} is finer than the slide's level 0 ({mpp:.4} um per pixel): scancer does not enlarge a slide")]
    Finer { asked: String, mpp: f64 },
}

fn plausible(mpp: f64, tag: &'static str) -> Result<f64, ResolutionError> {
    if PLAUSIBLE_MPP.contains(&mpp) {
        Ok(mpp)
    } else {
        Err(ResolutionError::Implausible { tag, mpp })
    }
}

/// Chooses the level of `pyramid` for `choice`.
pub(crate) fn plan(pyramid: &Pyramid, choice: &LevelChoice) -> Result<Plan, ResolutionError> {
    let base = pyramid.levels[0];
    // What the slide declares, if plausible (an implausible tag is no resolution).
    let declared = pyramid
        .mpp
        .and_then(|(m, source)| plausible(m, source).ok().map(|m| (m, source)));
    let (mpp, overridden): (Option<(f64, &'static str)>, _) = match (choice.slide_mpp, declared) {
        (Some(given), Some(declared)) if choice.override_mpp => {
            (Some((given, "--override-slide-mpp")), Some(declared))
        }
        (_, Some(declared)) => (Some(declared), None),
        (Some(given), None) => (Some((given, "--slide-mpp")), None),
        (None, None) => (None, None),
    };
    // Square pixels are assumed: where the slide's own axes differ, the analysis says so.
    let anisotropic = pyramid
        .axes
        .filter(|_| declared.is_some() && overridden.is_none() && mpp == declared);
    let implausible = match (choice.slide_mpp, pyramid.mpp) {
        (None, Some((m, source))) => plausible(m, source).err(),
        _ => None,
    };
    let unknown = |what: String| -> ResolutionError {
        implausible
            .clone()
            .unwrap_or(ResolutionError::Undeclared { what })
    };
    let at_level =
        |level: u32, note: Option<String>| -> Result<Plan, ResolutionError> {
            let l = *pyramid.levels.get(level as usize).ok_or_else(|| {
                ResolutionError::NoSuchLevel {
                    level,
                    last: pyramid.levels.len() - 1,
                }
            })?;
            Ok(Plan {
                level,
                resample: None,
                size: (l.width, l.height),
                level0: (base.width, base.height),
                scale: (
                    base.width as f64 / l.width.max(1) as f64,
                    base.height as f64 / l.height.max(1) as f64,
                ),
                mpp,
                note,
                overridden,
                anisotropic,
            })
        };
    if base.width <= choice.patch.0 && base.height <= choice.patch.1 {
        return at_level(0, None);
    }
    // The downsample from level 0 wanted, and what it was asked as.
    let (wanted, asked) = match choice.target {
        Some(Target::Level(level)) => return at_level(level, None),
        Some(Target::Mpp(target)) => {
            let (m, _) = mpp.ok_or_else(|| unknown(format!("--mpp {target} was asked for")))?;
            (target / m, format!("--mpp {target}"))
        }
        Some(Target::Magnification(x)) => match (pyramid.objective, mpp) {
            (Some(power), _) => (power / x, format!("--magnification {x}")),
            (None, Some((m, _))) => (MPP_AT_10X * 10.0 / x / m, format!("--magnification {x}")),
            (None, None) => {
                return Err(unknown(format!(
                    "--magnification {x} was asked for (and no objective power is declared)"
                )))
            }
        },
        None => match (choice.model_mpp, mpp) {
            (Some(target), Some((m, _))) => (target / m, format!("the model's mpp {target}")),
            (Some(target), None) => {
                return at_level(
                    0,
                    Some(
                        unknown(format!("the model was trained at {target} um per pixel"))
                            .to_string()
                            .replace(": pass", "; read at level 0 as it is: pass"),
                    ),
                )
            }
            (None, _) => return at_level(0, None),
        },
    };
    if wanted < 1.0 - TOLERANCE {
        return Err(ResolutionError::Finer {
            asked,
            mpp: mpp.map_or(f64::NAN, |(m, _)| m),
        });
    }
    // The coarsest level that is not coarser than wanted (within the tolerance).
    let (index, level) = pyramid
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.downsample <= wanted * (1.0 + TOLERANCE))
        .max_by(|a, b| a.1.downsample.total_cmp(&b.1.downsample))
        .map(|(i, l)| (i as u32, *l))
        .unwrap_or((0, base));
    let remainder = wanted / level.downsample;
    if (remainder - 1.0).abs() <= TOLERANCE {
        return at_level(index, None);
    }
    let size = (
        ((level.width as f64 / remainder).round() as usize).max(1),
        ((level.height as f64 / remainder).round() as usize).max(1),
    );
    Ok(Plan {
        level: index,
        resample: Some(size),
        size,
        level0: (base.width, base.height),
        scale: (
            base.width as f64 / size.0 as f64,
            base.height as f64 / size.1 as f64,
        ),
        mpp,
        note: None,
        overridden,
        anisotropic,
    })
}

/// A resolution from TIFF's XResolution and ResolutionUnit (2: inch, 3: centimetre; 1 or none: no
/// absolute unit).
pub(crate) fn from_tiff(x_resolution: f64, unit: u16) -> Option<(f64, &'static str)> {
    let per_unit = match unit {
        2 => 25_400.0,
        3 => 10_000.0,
        _ => return None,
    };
    (x_resolution > 0.0 && x_resolution.is_finite())
        .then(|| (per_unit / x_resolution, "TIFF XResolution"))
}

/// A resolution from PNG's pHYs (pixels per metre).
pub(crate) fn from_png(pixels_per_metre: u32) -> Option<(f64, &'static str)> {
    (pixels_per_metre > 0).then(|| (1e6 / f64::from(pixels_per_metre), "PNG pHYs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Camelyon16-like scan: 0.243 um at level 0, levels 1, 4, 16 and 32 times smaller.
    fn camelyon() -> Pyramid {
        Pyramid {
            levels: [1.0, 4.0, 16.0, 32.0]
                .iter()
                .map(|&d| Level {
                    width: (97_792.0 / d) as usize,
                    height: (221_184.0 / d) as usize,
                    downsample: d,
                })
                .collect(),
            mpp: Some((0.243, "openslide.mpp-x")),
            objective: Some(40.0),
            axes: None,
        }
    }

    fn target(t: Target) -> LevelChoice {
        LevelChoice {
            target: Some(t),
            ..LevelChoice::default()
        }
    }

    #[test]
    fn a_level_at_the_target_is_read_as_it_is() {
        // 0.972 um is level 1 (4x) within 1%.
        let p = plan(&camelyon(), &target(Target::Mpp(0.97))).unwrap();
        assert_eq!((p.level, p.resample), (1, None));
        assert_eq!(p.scale, (4.0, 4.0));
        assert_eq!(p.x0(96), 384);
        let p = plan(&camelyon(), &target(Target::Magnification(10.0))).unwrap();
        assert_eq!((p.level, p.resample), (1, None));
    }

    #[test]
    fn the_remainder_is_resampled_from_the_level_below() {
        // 2 um: level 1 (0.972) halved.
        let p = plan(&camelyon(), &target(Target::Mpp(2.0))).unwrap();
        assert_eq!(p.level, 1);
        let (w, h) = p.resample.unwrap();
        assert_eq!((w, h), (11_882, 26_874));
        assert!((p.mpp.unwrap().0 * p.downsample() - 2.0).abs() < 1e-3);
        // Finer than level 0 is refused, not enlarged.
        let e = plan(&camelyon(), &target(Target::Mpp(0.1)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("finer than the slide's level 0"), "{e}");
    }

    #[test]
    fn no_resolution_is_refused_for_a_target_and_noted_for_the_model_default() {
        let flat = Pyramid::flat(1000, 1000, None);
        let e = plan(&flat, &target(Target::Mpp(1.0)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("declares no resolution") && e.contains("--slide-mpp"),
            "{e}"
        );
        let model = LevelChoice {
            model_mpp: Some(0.972),
            ..LevelChoice::default()
        };
        let p = plan(&flat, &model).unwrap();
        assert_eq!((p.level, p.resample), (0, None));
        assert!(p.note.unwrap().contains("read at level 0 as it is"));
        // --slide-mpp supplies it.
        let given = LevelChoice {
            slide_mpp: Some(0.5),
            ..model
        };
        let p = plan(&flat, &given).unwrap();
        assert_eq!(p.resample, Some((514, 514)));
    }

    #[test]
    fn a_screen_resolution_is_not_a_scan_resolution() {
        let flat = Pyramid::flat(500, 500, from_tiff(72.0, 2));
        let e = plan(&flat, &target(Target::Mpp(1.0)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("352.7778 um per pixel"), "{e}");
        assert_eq!(plan(&flat, &LevelChoice::default()).unwrap().mpp, None);
        assert_eq!(from_tiff(40_000.0, 3), Some((0.25, "TIFF XResolution")));
        assert_eq!(from_tiff(100.0, 1), None);
        assert_eq!(from_png(4_000_000), Some((0.25, "PNG pHYs")));
    }

    #[test]
    fn a_declared_resolution_is_kept_unless_overridden() {
        // --slide-mpp is a fallback: the slide's own 0.243 stands.
        let fallback = LevelChoice {
            slide_mpp: Some(0.25),
            ..target(Target::Mpp(0.97))
        };
        let p = plan(&camelyon(), &fallback).unwrap();
        assert_eq!(p.mpp, Some((0.243, "openslide.mpp-x")));
        assert_eq!(p.overridden, None);
        // --override-slide-mpp replaces it, and says what it replaced.
        let forced = LevelChoice {
            override_mpp: true,
            ..fallback
        };
        let p = plan(&camelyon(), &forced).unwrap();
        assert_eq!(p.mpp, Some((0.25, "--override-slide-mpp")));
        assert_eq!(p.overridden, Some((0.243, "openslide.mpp-x")));
        // Where the slide declares none, the fallback applies and nothing is overridden.
        let flat = Pyramid::flat(1000, 1000, None);
        let p = plan(&flat, &forced).unwrap();
        assert_eq!((p.mpp, p.overridden), (Some((0.25, "--slide-mpp")), None));
    }

    #[test]
    fn pixels_that_are_not_square_are_analysed_at_their_mean_and_said() {
        let declared = across_and_down(((0.25, "TIFF XResolution"), (0.3, "TIFF XResolution")));
        assert_eq!(declared.mpp, (0.275, "TIFF XResolution"));
        assert_eq!(declared.axes, Some((0.25, 0.3)));
        // Within 1 %: square.
        assert_eq!(across_and_down(((0.25, "x"), (0.2501, "x"))).axes, None);
        let pyramid = Pyramid {
            axes: declared.axes,
            ..Pyramid::flat(1000, 1000, Some(declared.mpp))
        };
        let p = plan(&pyramid, &target(Target::Mpp(0.55))).unwrap();
        assert_eq!(p.anisotropic, Some((0.25, 0.3)));
        // Not when --override-slide-mpp replaced the declared resolution.
        let forced = LevelChoice {
            slide_mpp: Some(0.25),
            override_mpp: true,
            ..target(Target::Mpp(0.55))
        };
        assert_eq!(plan(&pyramid, &forced).unwrap().anisotropic, None);
    }

    #[test]
    fn levels_beyond_the_pyramid_are_named() {
        let e = plan(&camelyon(), &target(Target::Level(7))).unwrap_err();
        assert_eq!(e.to_string(), "--level 7: the slide has levels 0 to 3");
    }
}
