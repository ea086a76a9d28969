//! Shell completions and man pages, generated from the clap definitions
//! (`clap_complete`, `clap_mangen`), so they never drift from the flags.
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::{Cli, CompletionsArgs, ManArgs};

/// `gateprobe completions SHELL`: the script on standard output.
pub fn completions(args: &CompletionsArgs) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "gateprobe", &mut script);
    std::io::stdout()
        .write_all(&script)
        .context("cannot write the completion script to standard output")?;
    Ok(0)
}

/// `gateprobe man [--dir DIR]`: gateprobe.1 on standard output, or every
/// command's page written into DIR.
pub fn man(args: &ManArgs) -> Result<u8> {
    let command = Cli::command();
    match &args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("cannot render the man page")?;
            std::io::stdout()
                .write_all(&page)
                .context("cannot write the man page to standard output")?;
        }
        Some(dir) => write_pages(command, dir)?,
    }
    Ok(0)
}

fn write_pages(command: clap::Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--dir {}: cannot create the directory", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("--dir {}: cannot write the man pages", dir.display()))?;
    Ok(())
}
