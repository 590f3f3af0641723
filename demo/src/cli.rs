//! Command-line flags, parsed by hand: four flags do not need a parser crate.

use super::Choice;
use std::fmt;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: cargo run --release --example incident -- [--quick] [--out PATH] [--evaluator E]

Replays seven incidents against a chain of services measured with
selftime, evaluates the shipped Prometheus rules on what their /metrics
said, and shows whom each incident paged: with the alert the auth team
had before selftime (p99 at the gateway's endpoint), and with selftime.

options:
  --quick          short run (about 20 s instead of about 2 minutes)
  --out PATH       where to write the SVG chart (default: target/incident.svg);
                   incident.json and incident.rules.yml go beside it
  --evaluator E    `promtool` (needs it on the PATH) or `builtin`
                   (default: promtool when on the PATH, else builtin)
  -h, --help       print this help

exit status: 0 when every incident reached exactly its owner and the
endpoint alert paged for every incident, 1 when not or the run fails,
2 for a bad command line.

environment:
  REDIS_URL     use this Redis as the session store instead of the
                in-process stand-in (e.g. redis://127.0.0.1:6379)";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Options),
    Help,
}

/// The options of a run.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub quick: bool,
    /// `None`: the default path, resolved by the caller.
    pub out: Option<PathBuf>,
    pub evaluator: Choice,
}

/// A command line that cannot be run; printed before the usage, exit code 2.
#[derive(Debug, PartialEq, Eq)]
pub enum CliError {
    Unknown(String),
    Missing(&'static str),
    Empty(&'static str),
    Repeated(&'static str),
    Positional(String),
    BadValue(&'static str, String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(flag) => write!(f, "unknown option `{flag}`"),
            Self::Missing(flag) => write!(f, "option `{flag}` needs a value"),
            Self::Empty(flag) => write!(f, "option `{flag}` needs a non-empty value"),
            Self::Repeated(flag) => write!(f, "option `{flag}` given more than once"),
            Self::Positional(arg) => write!(f, "unexpected argument `{arg}`"),
            Self::BadValue(flag, value) => {
                write!(
                    f,
                    "option `{flag}` takes `promtool` or `builtin`, not `{value}`"
                )
            }
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, CliError> {
    let mut options = Options {
        quick: false,
        out: None,
        evaluator: Choice::Auto,
    };
    let mut evaluator_seen = false;
    let mut quick_seen = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" => {
                if inline.is_some() {
                    return Err(CliError::Unknown(arg));
                }
                if quick_seen {
                    return Err(CliError::Repeated("--quick"));
                }
                quick_seen = true;
                options.quick = true;
            }
            "--out" => {
                if options.out.is_some() {
                    return Err(CliError::Repeated("--out"));
                }
                let value = match inline {
                    Some(value) => value,
                    None => args.next().ok_or(CliError::Missing("--out"))?,
                };
                if value.is_empty() {
                    return Err(CliError::Empty("--out"));
                }
                if value.starts_with('-') {
                    // `--out --quick` is a forgotten value, not a file named
                    // `--quick` (write `./-name` for a file that starts with `-`).
                    return Err(CliError::Missing("--out"));
                }
                options.out = Some(PathBuf::from(value));
            }
            "--evaluator" => {
                if evaluator_seen {
                    return Err(CliError::Repeated("--evaluator"));
                }
                evaluator_seen = true;
                let value = match inline {
                    Some(value) => value,
                    None => args.next().ok_or(CliError::Missing("--evaluator"))?,
                };
                options.evaluator = match value.as_str() {
                    "builtin" => Choice::Builtin,
                    "promtool" => Choice::Promtool,
                    _ => return Err(CliError::BadValue("--evaluator", value)),
                };
            }
            _ if arg.starts_with('-') => return Err(CliError::Unknown(arg)),
            _ => return Err(CliError::Positional(arg)),
        }
    }
    Ok(Command::Run(options))
}
