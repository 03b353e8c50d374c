//! The configuration file (`--config hookflow.toml`) and `hookflow config print`.
//!
//! The file's keys are the `serve` flags without their dashes, in kebab-case
//! (`max-retries = 5`). Precedence is flags > environment > file > defaults. clap already
//! does flags > environment > defaults, so the file is layered in as environment: each of its
//! keys whose variable is not set becomes that variable before the command line is parsed
//! again. Values are checked here first, with clap's own parser for the flag, so that a bad one
//! is reported with the key and the file rather than as a flag the user never typed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};

/// Why the configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not valid TOML: {message}")]
    Syntax { file: PathBuf, message: String },
    #[error("{file}: unknown key `{key}`{hint}; `hookflow config print` lists the keys")]
    UnknownKey {
        file: PathBuf,
        key: String,
        hint: String,
    },
    #[error("{file}: key `{key}`: {message}")]
    BadValue {
        file: PathBuf,
        key: String,
        message: String,
    },
}

/// Keys that are not settings: they say where settings come from, or are clap's own.
const NOT_SETTINGS: [&str; 3] = ["config", "help", "version"];

/// The settings a file may hold: the `serve` flags and the global ones (logging), each with
/// its environment variable.
fn settings(cli: &Command) -> Vec<Arg> {
    let serve = cli
        .find_subcommand("serve")
        .map(|s| s.get_arguments().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    cli.get_arguments()
        .cloned()
        .chain(serve)
        .filter(|a| a.get_long().is_some_and(|l| !NOT_SETTINGS.contains(&l)))
        .filter(|a| a.get_env().is_some())
        .collect()
}

/// Reads `file` and sets the environment variable of each of its keys that the environment
/// does not set already. Call before the runtime starts (no other threads yet); then parse
/// the command line again. Returns the variables set, so `config print` can tell their source.
pub fn apply_file(cli: &Command, file: &Path) -> Result<BTreeSet<String>, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_owned(),
        source,
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
    let settings = settings(cli);
    let mut set = BTreeSet::new();
    let mut assignments = Vec::new();
    for (key, value) in &table {
        let Some(arg) = settings.iter().find(|a| a.get_long() == Some(key.as_str())) else {
            let kebab = key.replace('_', "-");
            let hint = if settings
                .iter()
                .any(|a| a.get_long() == Some(kebab.as_str()))
            {
                format!(" (keys are written as the flags: `{kebab}`)")
            } else {
                String::new()
            };
            return Err(ConfigError::UnknownKey {
                file: file.to_owned(),
                key: key.clone(),
                hint,
            });
        };
        let bad = |message: String| ConfigError::BadValue {
            file: file.to_owned(),
            key: key.clone(),
            message,
        };
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(bad(format!("expected a list of strings, found {other}"))),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => {
                return Err(bad(format!(
                    "expected a string, a number or a list of strings, found {}",
                    other.type_str()
                )))
            }
        };
        // clap's own check of the flag, so the file accepts exactly what the flag does; alone
        // and without its variable, so nothing else in the environment is blamed on this key.
        Command::new("hookflow")
            .arg(arg.clone().env(None::<&'static str>).global(false))
            .try_get_matches_from(["hookflow", &format!("--{key}={text}")])
            .map_err(|e| bad(clap_message(&e)))?;
        let env = arg
            .get_env()
            .expect("settings() keeps arguments with a variable")
            .to_string_lossy()
            .into_owned();
        assignments.push((env, text));
    }
    // Only once the whole file is good: nothing half-applied.
    for (env, text) in assignments {
        if std::env::var_os(&env).is_none() {
            std::env::set_var(&env, text);
            set.insert(env);
        }
    }
    Ok(set)
}

/// clap's message without its `error: ` prefix, usage and tips.
fn clap_message(err: &clap::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").trim().to_owned()
}

/// Settings whose values are masked in `config print`.
const SECRETS: [&str; 2] = ["admin-token", "secret-key"];

/// The effective configuration as TOML that `--config` accepts, each line saying where its
/// value came from; secrets are masked. `matches` are those of the command holding the
/// `serve` flags; `from_file` the variables [`apply_file`] set.
pub fn print(cli: &Command, matches: &ArgMatches, from_file: &BTreeSet<String>) -> String {
    let mut out = String::from(
        "# hookflow's effective configuration (flags > environment > file > defaults);\n\
         # secrets are masked.\n",
    );
    for arg in settings(cli) {
        let id = arg.get_id().as_str();
        let key = arg.get_long().unwrap_or(id);
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag".to_owned(),
            Some(ValueSource::EnvVariable) if from_file.contains(&env) => "file".to_owned(),
            Some(ValueSource::EnvVariable) => format!("env {env}"),
            Some(ValueSource::DefaultValue) => "default".to_owned(),
            _ => String::new(),
        };
        let raw: Option<String> = matches.try_get_raw(id).ok().flatten().map(|values| {
            values
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",")
        });
        match raw {
            None => out.push_str(&format!("# {key} = (not set)\n")),
            Some(value) => {
                let value = if value.is_empty() {
                    value
                } else if SECRETS.contains(&key) {
                    "********".to_owned()
                } else if key == "smtp-url" {
                    mask_url_password(&value)
                } else {
                    value
                };
                let shown = if value.parse::<u64>().is_ok() {
                    value
                } else {
                    toml::Value::String(value).to_string()
                };
                out.push_str(&format!("{key} = {shown}  # {source}\n"));
            }
        }
    }
    out
}

/// `smtps://user:secret@host` → `smtps://user:********@host`; a URL that does not parse is
/// masked whole, since where its password is cannot be told.
fn mask_url_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("********")).is_err() {
                return "********".to_owned();
            }
            parsed.to_string()
        }
        Err(_) => "********".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_passwords_are_masked_and_the_rest_kept() {
        assert_eq!(
            mask_url_password("smtps://mailer:hunter2@mail.example.com:465"),
            "smtps://mailer:********@mail.example.com:465"
        );
        assert_eq!(
            mask_url_password("smtp://mail.example.com:25"),
            "smtp://mail.example.com:25"
        );
        assert_eq!(mask_url_password("not a url hunter2"), "********");
    }
}
