//! The decode side of the forward+decode limit: every PNG of a folder decoded and preprocessed as
//! `scancer predict` does, on one thread (prints images/s as JSON; see BENCHMARKS.md, issue 23).
//!
//! usage: decode_bench CONFIG.toml FOLDER [ROUNDS]

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        anyhow::bail!("usage: decode_bench CONFIG.toml FOLDER [ROUNDS]");
    }
    let mut images: Vec<std::path::PathBuf> = std::fs::read_dir(&args[2])?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    images.sort();
    let rounds = args.get(3).map_or(Ok(3), |r| r.parse())?;
    let rate = scancer::bench::decode_rate(args[1].as_ref(), &images, rounds)?;
    println!(
        r#"{{"images": {}, "threads": 1, "images_per_s": {rate:.1}}}"#,
        images.len()
    );
    Ok(())
}
