//! `fundwatch generate` without building the whole binary (quick iterations on the generator):
//! `cargo run --release -p fundwatch-generate --example cli -- --out s.jsonl --labels l.jsonl [generate options]`
use std::fs::File;
use std::io::BufWriter;

use clap::Parser;
use fundwatch_generate::{generate, GenerateOptions};

#[derive(Parser)]
struct Cli {
    #[arg(long)]
    out: String,
    #[arg(long)]
    labels: String,
    #[command(flatten)]
    options: GenerateOptions,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let out = BufWriter::with_capacity(1 << 20, File::create(&cli.out)?);
    let labels = BufWriter::new(File::create(&cli.labels)?);
    let s = generate(&cli.options, out, labels)?;
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(())
}
