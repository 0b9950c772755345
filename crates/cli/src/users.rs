//! `hs serve --users FILE|-`: SCRAM users read from a file or stdin, so
//! their passwords never appear on the command line (where `ps` shows them).

use hs_core::observe::targets;
use std::io::{IsTerminal, Read};
use std::path::Path;

use crate::cli::{UserSpec, parse_user};
use crate::error::CliError;

/// Reads the users of `source`: a file, or standard input for `-`.
///
/// One `NAME:PASSWORD[:ROLE]` per line; blank lines and lines starting with
/// `#` are skipped. A file others may read is refused (and one its group may
/// read is warned about), as it holds passwords.
pub(crate) fn load(source: &Path) -> Result<Vec<UserSpec>, CliError> {
    if source == Path::new("-") {
        if std::io::stdin().is_terminal() {
            eprintln!("users, one NAME:PASSWORD[:ROLE] per line, then Ctrl-D:");
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| CliError::Usage(format!("cannot read users from stdin: {error}")))?;
        return parse(&text, "stdin");
    }
    let name = source.display().to_string();
    check_permissions(source, &name)?;
    let text = std::fs::read_to_string(source)
        .map_err(|error| CliError::Usage(format!("cannot read users file {name}: {error}")))?;
    parse(&text, &name)
}

/// Refuses a users file that every account on the machine may read.
#[cfg(unix)]
fn check_permissions(path: &Path, name: &str) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|error| CliError::Usage(format!("cannot read users file {name}: {error}")))?
        .permissions()
        .mode();
    if mode & 0o004 != 0 {
        return Err(CliError::Usage(format!(
            "users file {name} is readable by every user (mode {:o}); it holds passwords: chmod 600 {name}",
            mode & 0o777
        )));
    }
    if mode & 0o040 != 0 {
        log::warn!(
            target: targets::AUTH,
            "users file {name} is readable by its group (mode {:o}); consider chmod 600 {name}",
            mode & 0o777
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _name: &str) -> Result<(), CliError> {
    Ok(())
}

/// Parses the lines of a users file; errors name `source` and the line
/// number, never the line (it holds a password).
fn parse(text: &str, source: &str) -> Result<Vec<UserSpec>, CliError> {
    let mut users = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let user = parse_user(line)
            .map_err(|why| CliError::Usage(format!("{source}:{}: {why}", index + 1)))?;
        users.push(user);
    }
    if users.is_empty() {
        return Err(CliError::Usage(format!(
            "no users in {source} (one NAME:PASSWORD[:ROLE] per line)"
        )));
    }
    Ok(users)
}

/// `--user`s followed by the `--users` ones; a name given twice keeps its
/// last entry, with a warning naming it.
pub(crate) fn merge(mut users: Vec<UserSpec>, more: Vec<UserSpec>) -> Vec<UserSpec> {
    users.extend(more);
    let mut merged: Vec<UserSpec> = Vec::with_capacity(users.len());
    for user in users {
        if let Some(earlier) = merged.iter_mut().find(|u| u.name == user.name) {
            log::warn!(target: targets::AUTH, "user {} is given more than once; the last entry wins", user.name);
            *earlier = user;
        } else {
            merged.push(user);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_errors() {
        let users = parse(
            "# operators\nada:s3cret:operator\n\n  bob:pw  \n#carol:x:reader\n",
            "f",
        )
        .unwrap();
        let names: Vec<_> = users
            .iter()
            .map(|u| (u.name.as_str(), u.role.as_str()))
            .collect();
        assert_eq!(names, [("ada", "operator"), ("bob", "admin")]);
        let error = parse("ada:s3cret:operator\nbob:hunter2:boss\n", "f")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("f:2: unknown role"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        assert!(parse("# nobody\n", "f").is_err());
    }

    #[test]
    fn the_last_entry_of_a_name_wins() {
        let users = merge(
            vec![parse_user("ada:a:reader").unwrap()],
            vec![
                parse_user("bob:b").unwrap(),
                parse_user("ada:c:admin").unwrap(),
            ],
        );
        assert_eq!(users.len(), 2);
        assert_eq!(
            (users[0].name.as_str(), users[0].password.as_str()),
            ("ada", "c")
        );
    }
}
