//! Asking before something that cannot be taken back: on a terminal, a y/N question;
//! without one (a script, or `--json`), a refusal that says to pass `--yes`.

use crate::UsageError;
use crate::commands::Ctx;

/// Asks `question` after saying `what` it means; `yes` answers for scripts. `script`
/// is the refusal when there is no terminal to ask on, `declined` the error when the
/// answer is no.
pub fn ask(
    ctx: &Ctx,
    what: &str,
    question: &str,
    script: &str,
    declined: &str,
    yes: bool,
) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || ctx.out.json {
        anyhow::bail!(UsageError(format!("{what}. {script}")));
    }
    eprint!("{what}.\n{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        anyhow::bail!(UsageError(declined.into()));
    }
    Ok(())
}
