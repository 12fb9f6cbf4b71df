//! Front-end packages from the npm registry, fetched with npm itself (`npm pack`), pinned by version
//! and sha256, cached in the user cache and linked into `.tools/`: the viewer's OpenSeadragon, which
//! build.rs embeds in the binary so that the page needs no CDN.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// OpenSeadragon 6.1.1 (BSD-3-Clause): its minified build and licence.
const OPENSEADRAGON: Package = Package {
    spec: "openseadragon@6.1.1",
    tarball: "openseadragon-6.1.1.tgz",
    sha256: "b4ab2942f33b90e0448e4d20fc5ed14cee049f1f3ae49d70afd4b05e9a2f92d0",
    members: &[
        (
            "package/build/openseadragon/openseadragon.min.js",
            "openseadragon.min.js",
        ),
        ("package/LICENSE.txt", "LICENSE.txt"),
    ],
    cached: "openseadragon-6.1.1",
    link: "openseadragon",
};

struct Package {
    spec: &'static str,
    tarball: &'static str,
    sha256: &'static str,
    /// (path in the tarball, file name in the cache folder)
    members: &'static [(&'static str, &'static str)],
    cached: &'static str,
    link: &'static str,
}

/// Makes sure OpenSeadragon is cached and `.tools/openseadragon` points at it.
pub fn ensure_openseadragon(root: &Path) -> Result<PathBuf> {
    let p = &OPENSEADRAGON;
    let cached = crate::libtorch::cache_dir()?.join(p.cached);
    if !p
        .members
        .iter()
        .all(|(_, name)| cached.join(name).is_file())
    {
        fetch(p, &cached)?;
    }
    let link = root.join(".tools").join(p.link);
    if fs::read_link(&link).ok().as_deref() != Some(cached.as_path()) {
        fs::create_dir_all(root.join(".tools"))?;
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&cached, &link)?;
    }
    Ok(link)
}

fn fetch(p: &Package, cached: &Path) -> Result<()> {
    let parent = cached.parent().context("cache path has no parent")?;
    let work = parent.join(format!("download.{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    eprintln!("xtask: fetching {} (npm)", p.spec);
    let result = (|| -> Result<()> {
        let npm = std::env::var("SCANCER_NPM").unwrap_or_else(|_| "npm".to_owned());
        let ok = Command::new(&npm)
            .args(["pack", "--silent", p.spec, "--pack-destination"])
            .arg(&work)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let tarball = work.join(p.tarball);
        if !ok || !tarball.is_file() {
            bail!(
                "cannot fetch {} with `{npm} pack` (is npm installed?)",
                p.spec
            );
        }
        let digest = crate::libtorch::sha256(&tarball)?;
        if digest != p.sha256 {
            bail!(
                "{}: sha256 {digest} does not match the pinned {}",
                p.tarball,
                p.sha256
            );
        }
        let staged = work.join("staged");
        fs::create_dir_all(&staged)?;
        for (member, name) in p.members {
            let ok = Command::new("tar")
                .arg("-xzf")
                .arg(&tarball)
                .arg("-C")
                .arg(&work)
                .arg(member)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                bail!("{} holds no {member}", p.tarball);
            }
            fs::rename(work.join(member), staged.join(name))?;
        }
        let _ = fs::remove_dir_all(cached);
        fs::rename(&staged, cached)?;
        Ok(())
    })();
    let _ = fs::remove_dir_all(&work);
    result
}
