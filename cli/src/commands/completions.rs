//! `duet completions SHELL`: the shell completion script, generated from the command tree.

use clap::CommandFactory;

/// Print the completion script for a shell.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Install (bash):  duet completions bash > ~/.local/share/bash-completion/completions/duet\n\
                  Install (zsh):   duet completions zsh > ~/.zfunc/_duet   (with fpath+=~/.zfunc)\n\
                  Install (fish):  duet completions fish > ~/.config/fish/completions/duet.fish"
)]
pub struct Args {
    /// The shell: bash, zsh, fish, powershell or elvish.
    shell: clap_complete::Shell,
}

/// Runs `duet completions`.
pub fn run(a: Args) -> anyhow::Result<()> {
    // Generated into memory first: clap_complete panics on a failed write, and a reader
    // that closes the pipe early (`| head`) must end the command quietly.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut super::Cli::command(), "duet", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
    Ok(())
}
