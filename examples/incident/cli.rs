//! Command-line flags, parsed by hand: three flags do not need a parser crate.

use std::fmt;
use std::path::PathBuf;

pub(crate) const USAGE: &str = "\
usage: cargo run --release --example incident -- [--quick] [--out PATH]

Replays a dependency incident against an in-process auth service measured
with selftime, and shows which alerts page: one on total latency, one on
internal latency (total minus the time spent waiting on dependencies).

options:
  --quick       short phases (about 13 s instead of about 55 s)
  --out PATH    where to write the SVG chart (default: target/incident.svg)
  -h, --help    print this help

exit status: 0 when the alerts page as expected (total in phases 2-5,
internal in phase 5 only), 1 when they do not or the run fails, 2 for a
bad command line.

environment:
  REDIS_URL     use this Redis as the session store instead of the
                in-process stand-in (e.g. redis://127.0.0.1:6379)";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Run(Options),
    Help,
}

/// The options of a run.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    /// `None`: the default path, resolved by the caller.
    pub(crate) out: Option<PathBuf>,
}

/// A command line that cannot be run; printed before the usage, exit code 2.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CliError {
    Unknown(String),
    Missing(&'static str),
    Empty(&'static str),
    Repeated(&'static str),
    Positional(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(flag) => write!(f, "unknown option `{flag}`"),
            Self::Missing(flag) => write!(f, "option `{flag}` needs a value"),
            Self::Empty(flag) => write!(f, "option `{flag}` needs a non-empty value"),
            Self::Repeated(flag) => write!(f, "option `{flag}` given more than once"),
            Self::Positional(arg) => write!(f, "unexpected argument `{arg}`"),
        }
    }
}

/// Parses the arguments after the program name.
pub(crate) fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, CliError> {
    let mut options = Options {
        quick: false,
        out: None,
    };
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
            _ if arg.starts_with('-') => return Err(CliError::Unknown(arg)),
            _ => return Err(CliError::Positional(arg)),
        }
    }
    Ok(Command::Run(options))
}
