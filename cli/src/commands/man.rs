//! `duet man`: the manual page (roff), generated from the command tree; with `--dir`, one
//! page per subcommand as well (`duet-goal.1`, ...).

use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;

/// Print the manual page, or write every page to a folder.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  duet man | man -l -                       # read it\n  \
                  duet man --dir ~/.local/share/man/man1    # install a page per command"
)]
pub struct Args {
    /// Write `duet.1` and a page per subcommand into this folder instead.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Runs `duet man`.
pub fn run(a: Args) -> anyhow::Result<()> {
    // `duet help` has no page of its own (`--dir` writes none): not listed as one.
    let cmd = super::Cli::command().disable_help_subcommand(true);
    match a.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("cannot write the manual pages to {}", dir.display()))?;
            Ok(())
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            Ok(())
        }
    }
}
