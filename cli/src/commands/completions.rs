//! `duet completions SHELL`: the shell completion script, generated from the command tree.

use clap::CommandFactory;

/// Print the completion script for a shell.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples (install for your shell):\n  \
        mkdir -p ~/.local/share/bash-completion/completions\n  \
        duet completions bash > ~/.local/share/bash-completion/completions/duet\n  \
        mkdir -p ~/.zfunc && duet completions zsh > ~/.zfunc/_duet   # fpath+=~/.zfunc in ~/.zshrc\n  \
        mkdir -p ~/.config/fish/completions\n  \
        duet completions fish > ~/.config/fish/completions/duet.fish")]
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
