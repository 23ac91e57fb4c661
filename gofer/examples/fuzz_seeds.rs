//! Writes the valid sample messages (`gofer::fuzzing::seeds`) as files
//! into a directory, the seed corpus of the cargo-fuzz target:
//! `cargo run -p gofer --example fuzz_seeds -- gofer/fuzz/corpus/decode`.

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .ok_or_else(|| std::io::Error::other("usage: fuzz_seeds DIR"))?;
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let seeds = gofer::fuzzing::seeds();
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), s)?;
    }
    println!("{} seeds in {}", seeds.len(), dir.display());
    Ok(())
}
